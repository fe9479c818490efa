/**
 * undici's Agent, loaded when the first one is made: only a client that trusts extra CA
 * certificates (--ca-file) needs one, and loading undici takes longer than most commands
 * take to reach a registry. `new Agent(options)` behaves as undici's own.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Agent = function Agent(options?: Undici.Agent.Options): Undici.Agent {
  const undici = require('undici') as typeof Undici;
  return new undici.Agent(options);
} as unknown as typeof Undici.Agent;
