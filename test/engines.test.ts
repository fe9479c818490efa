/** Node.js 20, 22 and 24 are supported: our engines range and every runtime dependency's admit all three. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import semver from 'semver';
import { REPO_ROOT } from './support/cli.ts';

const SUPPORTED = ['20.5.0', '22.0.0', '24.0.0'];

interface Manifest { name: string; engines?: { node?: string }; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }

const manifest = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Manifest;

describe('supported Node.js majors', async () => {
  const own = await manifest(REPO_ROOT);
  const deps = Object.keys({ ...own.dependencies, ...own.devDependencies });

  it('package.json engines admits 20, 22 and 24 and nothing older than 20.5', () => {
    const range = own.engines?.node;
    assert.ok(range, 'engines.node is set');
    for (const v of SUPPORTED) assert.ok(semver.satisfies(v, range), `${range} admits ${v}`);
    assert.ok(!semver.satisfies('18.20.0', range), `${range} refuses 18`);
  });

  // A package without an engines field claims no limit; the rest are checked.
  const ranges = new Map<string, string>();
  for (const dep of deps) {
    const range = (await manifest(path.join(REPO_ROOT, 'node_modules', dep))).engines?.node;
    if (range !== undefined) ranges.set(dep, range);
  }
  for (const [dep, range] of ranges) {
    it(`${dep} (node ${range}) supports ${SUPPORTED.join(', ')}`, () => {
      for (const v of SUPPORTED) assert.ok(semver.satisfies(v, range), `${dep} needs node ${range}, which refuses ${v}`);
    });
  }
});
