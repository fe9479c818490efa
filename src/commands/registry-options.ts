/**
 * The options every command that talks to registries shares (push, mirror, release):
 * which hosts are plain HTTP, which CA to trust, and who we are. They become the
 * options of one RegistryClient.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { PauseBuildError } from '../errors.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/client.ts';
import { registerBasicCredentials } from '../registry/redact.ts';
import { isValidHost } from '../registry/reference.ts';
import { DEFAULT_RETRY } from '../registry/retry.ts';
import { readCaFile } from './ca-file.ts';
import { collect, type Runtime } from './common.ts';

export interface RegistryFlags {
  insecureRegistry?: string[];
  caFile?: string;
  username?: string;
  passwordStdin?: boolean;
  dockerConfig?: string;
  chunkSize?: string;
}

/** Where the password comes from; process.stdin unless a test says otherwise. */
export interface RegistryIo {
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env?: NodeJS.ProcessEnv;
  /** Debug lines (already redacted); default stderr under --debug. */
  readonly debug?: (line: string) => void;
}

export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--insecure-registry <host>', 'registry (host or host:port) spoken to over plain HTTP, without TLS; repeatable', collect)
    .option('--ca-file <file>', 'PEM file with extra CA certificates to trust for registries (besides the system ones)')
    .option('--username <user>', 'registry user name (with --password-stdin); default: docker login credentials')
    .option('--password-stdin', 'read the registry password or token from standard input')
    .option('--docker-config <dir>', 'directory of the docker config.json holding credentials (default: $DOCKER_CONFIG or ~/.docker)')
    .option('--chunk-size <size>', 'upload blobs in chunks of this size (e.g. 512k, 4m), for proxies that limit request bodies; default: whole, chunks after a 413');
}

/** `512k`, `4m`, `1048576` → bytes; from 64 KiB to 1 GiB. */
export function parseChunkSize(text: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(text.trim());
  const unit = m?.[2]?.[0]?.toLowerCase();
  const n = m ? Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 64 * 1024 || n > 1024 ** 3) {
    throw new PauseBuildError(`--chunk-size ${text} is not a size from 64k to 1g`, { hint: 'e.g. --chunk-size 512k for a proxy that takes at most 1 MiB per request' });
  }
  return n;
}

function insecureHosts(values: readonly string[] | undefined): string[] {
  const hosts = (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const h of hosts) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h) || h.includes('/')) {
      throw new PauseBuildError(`--insecure-registry "${h}" is not a host`, { hint: 'give host or host:port, without scheme or path, e.g. --insecure-registry 127.0.0.1:5000' });
    }
    if (!isValidHost(h)) throw new PauseBuildError(`--insecure-registry "${h}" is not a valid host`, { hint: 'give host or host:port, e.g. --insecure-registry 127.0.0.1:5000' });
  }
  return hosts;
}


async function readPassword(stdin: NodeJS.ReadableStream & { isTTY?: boolean }): Promise<string> {
  if (stdin.isTTY) {
    throw new PauseBuildError('--password-stdin reads the password from a pipe, and standard input is a terminal', {
      hint: 'pipe it: printf %s "$TOKEN" | pause-build … --username USER --password-stdin',
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  // As docker login does: one trailing newline is not part of the password.
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new PauseBuildError('--password-stdin got an empty password', { hint: 'pipe the password or token into standard input' });
  return password;
}

/** Environment variables that tune how long the client waits (for slow links, and for tests). */
export const TIMING_ENV = {
  /** Time allowed per try for an answer to start, and between two pieces of its body. */
  requestTimeoutMs: 'PAUSE_BUILD_REQUEST_TIMEOUT_MS',
  /** Delay before the second try; doubles each time (with jitter). */
  retryDelayMs: 'PAUSE_BUILD_RETRY_DELAY_MS',
} as const;

function millis(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 3_600_000) {
    throw new PauseBuildError(`${name}="${raw}" is not a number of milliseconds`, { hint: `set it to a whole number from 1 to 3600000, or unset it` });
  }
  return Number(raw);
}

/** Client timing from the environment: only what is set. */
export function timingFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<RegistryClientOptions, 'requestTimeoutMs' | 'retry'> {
  const requestTimeoutMs = millis(env, TIMING_ENV.requestTimeoutMs);
  const retryDelayMs = millis(env, TIMING_ENV.retryDelayMs);
  return {
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
    ...(retryDelayMs === undefined ? {} : { retry: { baseDelayMs: retryDelayMs, maxDelayMs: retryDelayMs * (DEFAULT_RETRY.maxDelayMs / DEFAULT_RETRY.baseDelayMs) } }),
  };
}

/** Flags → client options; reads the CA file and the password from stdin. */
export async function resolveRegistryOptions(flags: RegistryFlags, runtime: Pick<Runtime, 'debug'>, io: RegistryIo = {}): Promise<RegistryClientOptions> {
  if (flags.passwordStdin && !flags.username) {
    throw new PauseBuildError('--password-stdin needs --username', { hint: 'pass --username USER with it' });
  }
  if (flags.username && !flags.passwordStdin) {
    throw new PauseBuildError('--username needs --password-stdin', { hint: 'pipe the password: printf %s "$TOKEN" | pause-build … --username USER --password-stdin' });
  }
  const insecure = insecureHosts(flags.insecureRegistry);
  const chunkSize = flags.chunkSize === undefined ? undefined : parseChunkSize(flags.chunkSize);
  const timing = timingFromEnv(io.env ?? process.env);
  const caFile = flags.caFile === undefined ? undefined : path.resolve(flags.caFile);
  const ca = caFile === undefined ? undefined : [await readCaFile(caFile)];
  let explicit: { username: string; password: string } | undefined;
  if (flags.username) {
    const password = await readPassword(io.stdin ?? process.stdin);
    registerBasicCredentials(flags.username, password);
    explicit = { username: flags.username, password };
  }
  const debug = io.debug ?? (runtime.debug() ? (line: string) => process.stderr.write(`[registry] ${line}\n`) : undefined);
  return {
    insecure,
    ...(chunkSize === undefined ? {} : { chunkSize }),
    ...timing,
    ...(ca ? { ca, caFile } : {}),
    credentials: {
      ...(explicit ? { explicit } : {}),
      ...(flags.dockerConfig ? { dockerConfigDir: path.resolve(flags.dockerConfig) } : {}),
      ...(io.env ? { env: io.env } : {}),
    },
    ...(debug ? { debug } : {}),
  };
}

/** The client a command uses, from its flags. */
export async function registryClientFromFlags(flags: RegistryFlags, runtime: Pick<Runtime, 'debug'>, io: RegistryIo = {}): Promise<RegistryClient> {
  return new RegistryClient(await resolveRegistryOptions(flags, runtime, io));
}
