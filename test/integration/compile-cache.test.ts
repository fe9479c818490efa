/** The compile cache with a real compiler: a wrapper on PATH records every gcc run. */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';

let dir: string;
let env: Record<string, string>;
const log = () => readFile(path.join(dir, 'gcc.log'), 'utf8').catch(() => '');
// Only real compiles count: identity probes (--version, -print-file-name) run gcc too.
const runs = async () => (await log()).split('\n').filter((l) => l.includes('-DVERSION=')).length;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-cache-'));
  const wrappers = path.join(dir, 'wrappers');
  await mkdir(wrappers);
  const gcc = path.join(wrappers, 'x86_64-linux-gnu-gcc');
  await writeFile(gcc, `#!/bin/sh\necho "$*" >> ${dir}/gcc.log\nexec /usr/bin/x86_64-linux-gnu-gcc "$@"\n`);
  await chmod(gcc, 0o755);
  env = { PATH: `${wrappers}:${process.env.PATH}` };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('compile cache', () => {
  const build = (rev: string, extra: string[] = []) =>
    runCli(['bin', '--engine', 'host', '--arch', 'amd64', '--version', '3.10', '--revision', rev, '--bin-dir', path.join(dir, 'bin'), '--cache-dir', path.join(dir, 'cache'), ...extra], { env });

  it('compiles once, then reuses the result for the same inputs', async () => {
    const first = await build('r1');
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal(await runs(), 1);
    const second = await build('r1');
    assert.equal(second.exitCode, 0, second.stderr);
    assert.equal(await runs(), 1, 'the compiler ran again');
    assert.match(second.stderr, /amd64: .* ELF ok \(cached\)/);
    assert.equal(second.stdout, first.stdout, 'the cached binary differs');
  });

  it('compiles again when the version string changes, or with --no-cache', async () => {
    const other = await build('r2');
    assert.equal(other.exitCode, 0, other.stderr);
    assert.equal(await runs(), 2);
    assert.doesNotMatch(other.stderr, /\(cached\)/);
    const forced = await build('r2', ['--no-cache']);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.equal(await runs(), 3);
  });
});
