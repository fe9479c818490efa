/** capture(): what the quick look-ups (git, image inspect) rely on. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capture } from '../src/exec.ts';

describe('capture', () => {
  it('returns the exit code and both outputs, without the final newline', async () => {
    const r = await capture('sh', ['-c', 'printf "out\\n\\n"; printf "err\\n" >&2; exit 3']);
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err');
    assert.equal(r.code, undefined);
  });

  it('says ENOENT for a command that does not exist', async () => {
    const r = await capture('pause-build-no-such-command', []);
    assert.equal(r.exitCode, undefined);
    assert.equal(r.code, 'ENOENT');
  });

  it('adds env to the environment, runs in cwd, and gives no input', async () => {
    const r = await capture('sh', ['-c', 'echo "$PAUSE_BUILD_X:$HOME:$(pwd)"; cat'], { env: { PAUSE_BUILD_X: 'y' }, cwd: '/tmp' });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, `y:${process.env.HOME}:/tmp`);
  });

  it('kills a command that outlives its timeout', async () => {
    const started = Date.now();
    const r = await capture('sleep', ['10'], { timeout: 200 });
    assert.ok(Date.now() - started < 5000);
    assert.equal(r.exitCode, undefined);
    assert.equal(r.signal, 'SIGTERM');
  });
});
