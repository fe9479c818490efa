import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { checkRemovable } from '../src/commands/clean.ts';
import { PauseBuildError } from '../src/errors.ts';
import { runCli } from './support/cli.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'wt-release-clean-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('clean removes bin/ and _output/ and nothing else', async () => {
  await mkdir(path.join(dir, 'bin'));
  await writeFile(path.join(dir, 'bin', 'pause-linux-amd64'), 'x');
  await mkdir(path.join(dir, '_output', 'oci'), { recursive: true });
  await writeFile(path.join(dir, 'VERSION'), '3.10\n');
  const r = await runCli(['clean'], { cwd: dir });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, 'removed bin\nremoved _output');
  assert.deepEqual(await readdir(dir), ['VERSION']);
  const again = await runCli(['clean'], { cwd: dir });
  assert.equal(again.exitCode, 0, again.stderr);
  assert.equal(again.stdout, '', 'nothing left to remove');
});

test('clean refuses a directory that holds the current one', async () => {
  for (const d of ['.', '..', '/', dir]) {
    assert.throws(() => checkRemovable(d, dir), (e: unknown) => e instanceof PauseBuildError && /holds the current directory/.test(e.message));
  }
  assert.equal(checkRemovable('bin', dir), path.join(dir, 'bin'));
  assert.equal(checkRemovable('../elsewhere', dir), path.join(path.dirname(dir), 'elsewhere'));
  const r = await runCli(['clean', '--output-dir', '..'], { cwd: dir });
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /^error: refusing to remove .* it holds the current directory — /);
});
