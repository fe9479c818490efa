/**
 * Node.js 20, 22 and 24 are supported: our engines range admits a release of each, and no
 * dependency refuses any version our range admits.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import semver from 'semver';
import { REPO_ROOT } from './support/cli.ts';

const MAJORS = [20, 22, 24];

interface Manifest { name: string; engines?: { node?: string }; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }

const manifest = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Manifest;

describe('supported Node.js majors', async () => {
  const own = await manifest(REPO_ROOT);
  const deps = Object.keys({ ...own.dependencies, ...own.devDependencies });

  const engines = own.engines?.node ?? '';

  it('package.json engines admits 20, 22 and 24 and nothing older than 20', () => {
    assert.ok(engines, 'engines.node is set');
    for (const major of MAJORS) assert.ok(semver.intersects(engines, `${major}.x`), `${engines} admits a Node.js ${major}`);
    assert.ok(!semver.satisfies('18.20.0', engines), `${engines} refuses 18`);
  });

  // A package without an engines field claims no limit; the rest are checked.
  const ranges = new Map<string, string>();
  for (const dep of deps) {
    const range = (await manifest(path.join(REPO_ROOT, 'node_modules', dep))).engines?.node;
    if (range !== undefined) ranges.set(dep, range);
  }
  for (const [dep, range] of ranges) {
    it(`${dep} (node ${range}) accepts every version of ${engines}`, () => {
      assert.ok(semver.subset(engines, range), `${dep} needs node ${range}, narrower than engines ${engines}: raise engines.node`);
    });
  }
});
