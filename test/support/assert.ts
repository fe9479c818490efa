import assert from 'node:assert/strict';
import type { CliResult } from './cli.ts';

/** A failed run as users should see it: non-zero exit, one `error:` line, no stack trace. */
export function assertOneLineError(r: CliResult, pattern: RegExp, exitCode?: number): void {
  assert.notEqual(r.exitCode, 0, `expected failure, got exit 0; stdout: ${r.stdout}`);
  if (exitCode !== undefined) assert.equal(r.exitCode, exitCode);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  assert.equal(errors.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(errors[0]!, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at .+\(.*:\d+:\d+\)$/m, 'stack trace printed');
}
