/**
 * Real registries for the tests: Debian's `docker-registry` (CNCF distribution 2.8)
 * on loopback with a config and storage of its own (never the package's default
 * config), optionally with TLS from a test CA, htpasswd users, or bearer tokens from
 * a small token server written here. Also a proxy that counts requests and can inject
 * failures. Everything lives under /tmp/wt-registry-* (or opts.dirPrefix) and is removed by stop().
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createSign, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export interface RequestRecord {
  readonly method: string;
  /** Path and query, e.g. `/v2/pause/blobs/uploads/?mount=…`. */
  readonly url: string;
  readonly status: number;
}

export interface Certificates {
  readonly caFile: string;
  /** A directory holding only the CA, as skopeo's and podman's --cert-dir expect. */
  readonly caDir: string;
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TokenRequest {
  readonly method: string;
  readonly service: string | undefined;
  readonly scopes: readonly string[];
  /** The user that authenticated, or undefined for anonymous or refused requests. */
  readonly user: string | undefined;
  readonly status: number;
}

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly certFile: string;
  readonly requests: TokenRequest[];
  /** Every token it handed out (secrets: tests check that none is printed). */
  readonly issued: string[];
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Serve HTTPS with a certificate from a fresh test CA (SAN IP:127.0.0.1, DNS:localhost). */
  readonly tls?: boolean;
  /** More DNS names for that certificate (names a test maps to 127.0.0.1 itself). */
  readonly names?: readonly string[];
  /** htpasswd auth with this user (bcrypt). */
  readonly htpasswd?: { readonly username: string; readonly password: string };
  /** Bearer token auth, tokens from a Node token server that knows this user. */
  readonly token?: { readonly username: string; readonly password: string; readonly identityToken?: string; readonly pullOnly?: boolean };
  /** Where its working directory is made (mkdtemp prefix); default `/tmp/wt-registry-`. */
  readonly dirPrefix?: string;
  /** Accept foreign (non-distributable) layers whose urls match this regular expression, as Windows bases have. */
  readonly foreignUrls?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Working directory (config, storage, certificates, log). */
  readonly dir: string;
  /** The registry's stdout and stderr: app log and access log lines. */
  readonly logPath: string;
  readonly certificates?: Certificates;
  readonly tokenServer?: TokenServer;
  /** Requests from the access log, in order. */
  requests(): Promise<RequestRecord[]>;
  /** How many logged requests match. */
  count(method: string, url: RegExp): Promise<number>;
  /** Kills the registry process at once (a crash), keeping its port, storage and log. */
  crash(): Promise<void>;
  /** Starts it again after crash(), on the same port with the same storage; the log goes on. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const REGISTRY = 'docker-registry';

async function requireTool(tool: string, apt: string): Promise<void> {
  const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${tool} is not installed: apt-get install ${apt} (build/setup.sh does)`);
}

/** A free loopback port from the OS. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, logPath: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) {
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`docker-registry exited with ${child.exitCode}:\n${log.slice(-2000)}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`docker-registry did not listen on 127.0.0.1:${port} within 15 s`);
}

/** A CA and a server certificate it signed, for 127.0.0.1 and localhost. */
export async function makeCertificates(dir: string, names: readonly string[] = []): Promise<Certificates> {
  await requireTool('openssl', 'openssl');
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await execa('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=pause-build test CA', '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await execa('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(f('server.ext'), `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...names.map((n) => `DNS:${n}`)].join(',')}\nextendedKeyUsage=serverAuth\n`);
  await execa('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.crt'), '-days', '2', '-extfile', f('server.ext')]);
  const caPem = await readFile(f('ca.crt'), 'utf8');
  await mkdir(f('ca'), { recursive: true });
  await writeFile(path.join(f('ca'), 'ca.crt'), caPem);
  return { caFile: f('ca.crt'), caDir: f('ca'), caPem, certFile: f('server.crt'), keyFile: f('server.key') };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * A token service as distribution's token auth expects: GET realm?service&scope with
 * Basic credentials (or a POST refresh-token grant) → an RS256 JWT whose `x5c` holds a
 * certificate the registry trusts (its `rootcertbundle`), granting what was asked.
 */
export async function startTokenServer(dir: string, user: { username: string; password: string; identityToken?: string; pullOnly?: boolean }): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', '/CN=pause-build test token issuer', '-days', '2']);
  const key = await readFile(keyFile, 'utf8');
  const certDer = (await readFile(certFile, 'utf8')).replace(/-----[^-]+-----|\s/g, '');
  const service = 'pause-build-test-registry';
  const issuer = 'pause-build-test-issuer';
  const requests: TokenRequest[] = [];
  const issued: string[] = [];

  const sign = (subject: string, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((s) => {
      const [type = '', ...rest] = s.split(':');
      const actions = rest.pop() ?? '';
      // A pull-only user is granted pull whatever it asks for: a push then meets insufficient_scope.
      return { type, name: rest.join(':'), actions: actions.split(',').filter(Boolean).filter((a) => !user.pullOnly || a === 'pull') };
    });
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }));
    const claims = base64url(JSON.stringify({ iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 5, iat: now, jti: randomUUID(), access }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
    return `${header}.${claims}.${base64url(signature)}`;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://token');
      let scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      let service_ = url.searchParams.get('service') ?? undefined;
      let who: string | undefined;
      let refused = false;
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        service_ = form.get('service') ?? undefined;
        if (form.get('grant_type') === 'refresh_token' && user.identityToken && form.get('refresh_token') === user.identityToken) who = user.username;
        else refused = true;
      } else {
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (basic) {
          const decoded = Buffer.from(basic, 'base64').toString('utf8');
          if (decoded === `${user.username}:${user.password}`) who = user.username;
          else refused = true;
        }
      }
      const status = refused ? 401 : 200;
      requests.push({ method: req.method ?? '', service: service_, scopes, user: who, status });
      res.setHeader('Content-Type', 'application/json');
      if (refused) {
        res.statusCode = 401;
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      // Anonymous callers get a token that grants nothing.
      const token = sign(who ?? '', who ? scopes : []);
      issued.push(token);
      res.end(JSON.stringify(req.method === 'POST' ? { access_token: token, expires_in: 300 } : { token, expires_in: 300, issued_at: new Date().toISOString() }));
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    issued,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function parseAccessLog(log: string): RequestRecord[] {
  const out: RequestRecord[] = [];
  for (const m of log.matchAll(/^\S+ - \S+ \[[^\]]+\] "(\w+) (\S+) HTTP\/[\d.]+" (\d{3}) /gm)) {
    out.push({ method: m[1]!, url: m[2]!, status: Number(m[3]) });
  }
  return out;
}

/** Starts a registry on a free loopback port; resolves once it accepts connections. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  await requireTool(REGISTRY, 'docker-registry');
  const dir = await mkdtemp(opts.dirPrefix ?? '/tmp/wt-registry-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const logPath = path.join(dir, 'registry.log');
  let certificates: Certificates | undefined;
  let tokenServer: TokenServer | undefined;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${host}`,
    `  secret: ${createHash('sha256').update(dir).digest('hex')}`,
  ];
  try {
    if (opts.tls) {
      certificates = await makeCertificates(dir, opts.names);
      lines.push('  tls:', `    certificate: ${certificates.certFile}`, `    key: ${certificates.keyFile}`);
    }
    if (opts.htpasswd) {
      await requireTool('htpasswd', 'apache2-utils');
      const r = await execa('htpasswd', ['-Bbn', opts.htpasswd.username, opts.htpasswd.password]);
      await writeFile(path.join(dir, 'htpasswd'), `${r.stdout.trim()}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: pause-build-test', `    path: ${path.join(dir, 'htpasswd')}`);
    } else if (opts.token) {
      await requireTool('openssl', 'openssl');
      tokenServer = await startTokenServer(dir, opts.token);
      lines.push('auth:', '  token:', `    realm: ${tokenServer.realm}`, `    service: ${tokenServer.service}`, `    issuer: ${tokenServer.issuer}`,
        `    rootcertbundle: ${tokenServer.certFile}`);
    }
    if (opts.foreignUrls) lines.push('validation:', '  manifests:', '    urls:', '      allow:', `        - ${JSON.stringify(opts.foreignUrls)}`);
    const config = path.join(dir, 'config.yml');
    await writeFile(config, `${lines.join('\n')}\n`);
    const log = createWriteStream(logPath, { flags: 'a' });
    await new Promise((resolve) => log.once('open', resolve));
    const launch = async () => {
      const child = spawn(REGISTRY, ['serve', config], { stdio: ['ignore', log, log] });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await waitForPort(port, child, logPath).catch(async (e: unknown) => {
        child.kill('SIGKILL');
        throw e;
      });
      return { child, exited };
    };
    let { child, exited } = await launch();
    const requests = async () => parseAccessLog(await readFile(logPath, 'utf8'));
    return {
      host,
      port,
      url: `${opts.tls ? 'https' : 'http'}://${host}`,
      dir,
      logPath,
      certificates,
      tokenServer,
      requests,
      async count(method, url) {
        return (await requests()).filter((r) => r.method === method && url.test(r.url)).length;
      },
      async crash() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      },
      async restart() {
        if (child.exitCode === null && child.signalCode === null) throw new Error('the registry is still running');
        ({ child, exited } = await launch());
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
        log.end();
        await tokenServer?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await tokenServer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** A status alone, or a whole answer, given instead of forwarding. */
export type FaultAnswer = number | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string };

/** Decides per request: an answer to inject, or undefined to forward. `n` counts requests from 0. */
export type Fault = (req: { method: string; url: string; n: number; headers: http.IncomingHttpHeaders }) => FaultAnswer | undefined;

export interface TestProxy {
  /** `127.0.0.1:PORT` to use instead of the registry's host. */
  readonly host: string;
  /** Every request seen, with the status the client got. */
  readonly requests: RequestRecord[];
  count(method: string, url: RegExp): number;
  stop(): Promise<void>;
}

/**
 * A plain-HTTP proxy in front of a plain-HTTP registry that records every request and
 * can answer some of them with a failure instead (`fault`). The Host header is kept, so
 * upload Locations the registry returns point back at the proxy.
 */
export async function startProxy(target: string, fault?: Fault): Promise<TestProxy> {
  const [targetHost = '127.0.0.1', targetPort = '80'] = target.split(':');
  const requests: RequestRecord[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const injected = fault?.({ method, url, n: n++, headers: req.headers });
    if (injected !== undefined) {
      const answer = typeof injected === 'number' ? { status: injected } : injected;
      requests.push({ method, url, status: answer.status });
      req.resume();
      req.on('end', () => {
        res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
        res.end(answer.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected failure' }] }));
      });
      return;
    }
    const upstream = http.request({ host: targetHost, port: Number(targetPort), method, path: url, headers: req.headers }, (up) => {
      requests.push({ method, url, status: up.statusCode ?? 0 });
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (e) => {
      requests.push({ method, url, status: 502 });
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(upstream);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    requests,
    count: (method, url) => requests.filter((r) => r.method === method && url.test(r.url)).length,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Runs skopeo and returns what it printed; skopeo missing is an error, not a skip. */
export async function skopeo(args: readonly string[]): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  await requireTool('skopeo', 'skopeo');
  const r = await execa('skopeo', args, { reject: false, timeout: 60_000, stdin: 'ignore', encoding: 'buffer' });
  return { exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr).toString('utf8') };
}
