/**
 * The Windows binaries, built by the real mingw-w64 and Go and run under the real wine64:
 * PE-checked, reproducible, pause.exe prints its version, wincat relays bytes to a TCP
 * listener and back, and a mingw compile error is one line.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileWindows } from '../../src/compile-windows.ts';
import { PauseBuildError } from '../../src/errors.ts';
import { parsePe, peProblems } from '../../src/pe.ts';
import { WINDOWS_PLATFORMS } from '../../src/platforms.ts';
import { hostToolchain } from '../../src/toolchain/toolchain.ts';
import { runWine, smokeTestWindows } from '../../src/wine.ts';
import { assertOneLineError } from '../support/assert.ts';
import { REPO_ROOT, runCli } from '../support/cli.ts';

const platform = WINDOWS_PLATFORMS[0]!;
const source = path.join(REPO_ROOT, 'build', 'pause', 'windows', 'pause.c');
const VERSION = 'v3.10-windows0';

describe('Windows binaries under wine', { timeout: 300_000 }, () => {
  let dir: string;
  let prefix: string;
  let built: Awaited<ReturnType<typeof compileWindows>>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'windows-bin-'));
    // One prefix for the file: creating it takes ~20 s.
    prefix = path.join(dir, 'wine');
    built = await compileWindows({ source, version: VERSION, platform, toolchain: hostToolchain(), binDir: path.join(dir, 'bin') });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds a console PE32+ for amd64 importing only system DLLs, with no debug directory', async () => {
    for (const b of [built.pause, built.wincat]) {
      const info = parsePe(await readFile(b.path));
      assert.deepEqual(peProblems(info), [], b.path);
      assert.equal(info.machine, 0x8664);
      assert.equal(info.subsystem, 3);
      assert.equal(info.debugDirectory, false);
    }
    assert.deepEqual(parsePe(await readFile(built.pause.path)).imports.map((d) => d.toLowerCase()).sort(), ['kernel32.dll', 'msvcrt.dll']);
    assert.deepEqual(parsePe(await readFile(built.wincat.path)).imports.map((d) => d.toLowerCase()), ['kernel32.dll']);
    assert.equal(path.basename(built.pause.path), 'pause-windows-amd64.exe');
    assert.equal(path.basename(built.wincat.path), 'wincat-windows-amd64.exe');
    process.stderr.write(`# pause.exe ${built.pause.size} B sha256:${built.pause.sha256}\n# wincat.exe ${built.wincat.size} B sha256:${built.wincat.sha256}\n`);
  });

  it('gives the same bytes from a copy of the sources elsewhere', async () => {
    const copy = path.join(dir, 'elsewhere', 'windows');
    await cp(path.dirname(source), copy, { recursive: true });
    const again = await compileWindows({ source: path.join(copy, 'pause.c'), version: VERSION, platform, toolchain: hostToolchain(), binDir: path.join(dir, 'bin2') });
    assert.equal(again.pause.sha256, built.pause.sha256);
    assert.equal(again.wincat.sha256, built.wincat.sha256);
  });

  it('pause.exe -v prints the version under wine', async () => {
    const printed = await smokeTestWindows(prefix, built.pause.path, VERSION);
    assert.equal(printed, `pause.c ${VERSION}`);
    process.stderr.write(`# wine64 pause.exe -v: ${printed}\n`);
  });

  it('the wine check refuses a pause.exe printing another version', async () => {
    await assert.rejects(smokeTestWindows(prefix, built.pause.path, 'v9.9-other'), (e: unknown) => e instanceof PauseBuildError && /printed "pause\.c v3\.10-windows0".*expected "pause\.c v9\.9-other"/.test(e.message));
  });

  it('wincat relays stdin to a TCP listener and its answer to stdout', async () => {
    let received = '';
    const server = net.createServer((sock) => {
      sock.on('data', (d) => {
        received += d.toString();
      });
      // On the half-close that stdin's end becomes, answer and close.
      sock.on('end', () => sock.end(`echo:${received.toUpperCase()}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const payload = 'port-forward bytes \u00e9 1234567890\n'.repeat(200);
      const r = await runWine(prefix, built.wincat.path, ['127.0.0.1', String(port)], { input: payload, timeoutMs: 60_000 });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(received, payload);
      assert.equal(r.stdout, `echo:${payload.toUpperCase()}`);
      process.stderr.write(`# wine64 wincat.exe relayed ${Buffer.byteLength(payload)} B out and ${Buffer.byteLength(r.stdout)} B back\n`);
    } finally {
      server.close();
    }
  });

  it('wincat says which address it could not reach', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await runWine(prefix, built.wincat.path, ['127.0.0.1', String(port)], { input: '', timeoutMs: 60_000 });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, new RegExp(`wincat: cannot connect to 127\\.0\\.0\\.1:${port}`));
  });

  it('a mingw compile error is one line naming the arch and the fix, and leaves no binary', async () => {
    const broken = path.join(dir, 'broken', 'windows');
    await cp(path.dirname(source), broken, { recursive: true });
    await writeFile(path.join(broken, 'pause.c'), '#include <windows.h>\nint main(void) { return undefined_thing; }\n');
    const binDir = path.join(dir, 'broken-bin');
    await assert.rejects(compileWindows({ source: path.join(broken, 'pause.c'), version: VERSION, platform, toolchain: hostToolchain(), binDir }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /^compile for windows-amd64 failed \(host\): .*pause\.c:2:.*error: .undefined_thing. undeclared/);
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.hint ?? '', /fix pause\.c/);
      return true;
    });
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(binDir), []);
  });

  it('pause-build bin --arch windows reports a mingw compile error in one line, with no binary left', async () => {
    const root = path.join(dir, 'broken-root');
    await cp(path.join(REPO_ROOT, 'build', 'pause'), path.join(root, 'build', 'pause'), { recursive: true });
    await writeFile(path.join(root, 'build', 'pause', 'windows', 'pause.c'), '#include <windows.h>\nint main(void) { Sleep(; }\n');
    const binDir = path.join(dir, 'cli-bin');
    const r = await runCli(['bin', '--arch', 'windows', '--engine', 'host', '--root', root, '--version', '3.10', '--revision', 'bad', '--no-cache', '--bin-dir', binDir]);
    assertOneLineError(r, /^error: compile for windows-amd64 failed \(host\): .*pause\.c:2:.*error: .* — fix pause\.c or wincat\/; run with --debug for the full compiler output$/);
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(binDir), []);
  });
});
