import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { type RegistryFlags, addRegistryOptions, resolveRegistryOptions, timingFromEnv } from '../src/commands/registry-options.ts';
import { PauseBuildError } from '../src/errors.ts';
import { redact } from '../src/registry/redact.ts';

function parse(args: string[]): RegistryFlags {
  const cmd = addRegistryOptions(new Command('x').exitOverride());
  cmd.parse(args, { from: 'user' });
  return cmd.opts<RegistryFlags>();
}

const quiet = { debug: () => false };
const stdin = (text: string) => Readable.from([Buffer.from(text)]);

describe('registry options', () => {
  let dir: string;
  let caFile: string;
  before(async () => {
    dir = await mkdtemp('/tmp/wt-registry-options-');
    caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    await writeFile(path.join(dir, 'not-pem.txt'), 'hello');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses repeated and comma-separated insecure registries, the CA and the docker config', async () => {
    const flags = parse(['--insecure-registry', '127.0.0.1:5000', '--insecure-registry', 'localhost,[::1]:5001', '--ca-file', caFile, '--docker-config', dir]);
    const opts = await resolveRegistryOptions(flags, quiet);
    assert.deepEqual(opts.insecure, ['127.0.0.1:5000', 'localhost', '[::1]:5001']);
    assert.deepEqual(opts.ca, ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n']);
    assert.equal(opts.caFile, caFile);
    assert.deepEqual(opts.credentials, { dockerConfigDir: dir });
    assert.equal(opts.debug, undefined);
  });

  it('trusts nothing extra and nothing insecure by default, not even loopback', async () => {
    const opts = await resolveRegistryOptions(parse([]), quiet);
    assert.deepEqual(opts.insecure, []);
    assert.equal(opts.ca, undefined);
    assert.deepEqual(opts.credentials, {});
  });

  it('reads the password from stdin without its trailing newline, and keeps it out of output', async () => {
    const opts = await resolveRegistryOptions(parse(['--username', 'bot', '--password-stdin']), quiet, { stdin: stdin('pa ss\tword-1\r\n') });
    assert.deepEqual(opts.credentials?.explicit, { username: 'bot', password: 'pa ss\tword-1' });
    assert.equal(redact('x pa ss\tword-1 y'), 'x *** y');
  });

  it('takes the request timeout and the retry delay from the environment, and refuses what is not milliseconds', async () => {
    assert.deepEqual(timingFromEnv({}), {});
    assert.deepEqual(timingFromEnv({ PAUSE_BUILD_REQUEST_TIMEOUT_MS: '1500', PAUSE_BUILD_RETRY_DELAY_MS: '10' }), {
      requestTimeoutMs: 1500,
      retry: { baseDelayMs: 10, maxDelayMs: 320 },
    });
    const opts = await resolveRegistryOptions(parse([]), quiet, { env: { PAUSE_BUILD_REQUEST_TIMEOUT_MS: ' 250 ' } });
    assert.equal(opts.requestTimeoutMs, 250);
    for (const bad of ['5s', '-1', '0', '1.5', '99999999']) {
      assert.throws(() => timingFromEnv({ PAUSE_BUILD_RETRY_DELAY_MS: bad }), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `PAUSE_BUILD_RETRY_DELAY_MS="${bad}" is not a number of milliseconds`);
        return true;
      });
    }
  });

  it('logs under --debug', async () => {
    const opts = await resolveRegistryOptions(parse([]), { debug: () => true });
    assert.equal(typeof opts.debug, 'function');
  });

  const refusals: [string, string[], RegExp, string | undefined][] = [
    ['--password-stdin without --username', ['--password-stdin'], /^--password-stdin needs --username$/, 'x'],
    ['--username without --password-stdin', ['--username', 'bot'], /^--username needs --password-stdin$/, undefined],
    ['an empty password', ['--username', 'bot', '--password-stdin'], /^--password-stdin got an empty password$/, '\n'],
    ['a scheme in --insecure-registry', ['--insecure-registry', 'http://127.0.0.1:5000'], /^--insecure-registry "http:\/\/127\.0\.0\.1:5000" is not a host$/, undefined],
    ['a bad host in --insecure-registry', ['--insecure-registry', 'bad host'], /is not a valid host$/, undefined],
    ['a missing --ca-file', ['--ca-file', '/nonexistent/ca.pem'], /^cannot read --ca-file \/nonexistent\/ca\.pem \(ENOENT\)$/, undefined],
  ];
  for (const [name, args, message, input] of refusals) {
    it(`refuses ${name}`, async () => {
      await assert.rejects(resolveRegistryOptions(parse(args), quiet, input === undefined ? {} : { stdin: stdin(input) }), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, message);
        assert.ok(e.hint);
        return true;
      });
    });
  }

  it('refuses a --ca-file that holds no certificate', async () => {
    await assert.rejects(resolveRegistryOptions(parse(['--ca-file', path.join(dir, 'not-pem.txt')]), quiet), /holds no PEM certificate/);
  });

  it('refuses to read a password from a terminal', async () => {
    const tty = Object.assign(stdin('secret-from-tty'), { isTTY: true });
    await assert.rejects(resolveRegistryOptions(parse(['--username', 'bot', '--password-stdin']), quiet, { stdin: tty }), /standard input is a terminal/);
  });
});
