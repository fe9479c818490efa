#!/usr/bin/env node
/** The package's bin: the bundled CLI beside it (main.js), run with V8's code cache. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBundle } from './code-cache.ts';

runBundle(path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js'));
