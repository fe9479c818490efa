/**
 * containerd started by a test, never the system's: its own root, state, socket and config
 * under a test folder, inside a private mount namespace whose /etc/hosts maps test names
 * to 127.0.0.1. containerd treats `localhost` and loopback addresses as plain HTTP by
 * default; a registry reached by such a name is not special, so only its hosts.toml can
 * make containerd speak plain HTTP or trust a private CA.
 *
 * The shims put their sockets, and runc its state, under /run/containerd whatever the
 * config says: the namespace has a tmpfs of its own there.
 *
 * The config is the file `pause-build sandbox-config` printed, with only what this machine
 * and a private instance need merged in: paths, restrict_oom_score_adj (no
 * CAP_SYS_RESOURCE here) and NRI off (its socket would be system-wide).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parse, stringify } from 'smol-toml';
import { type CriClient, criClient } from './cri.ts';
import { unstableBinDir } from './tools.ts';

export interface ContainerdVersion {
  /** `1.6` or `2.1`, as the tests name it. */
  readonly name: string;
  /** `pause-build sandbox-config --runtime` for it. */
  readonly runtime: 'containerd' | 'containerd1';
  readonly binDir: string;
}

/** Debian bookworm's containerd 1.6 (system package) and unstable's 2.1 (unpacked privately). */
export function containerdVersions(): ContainerdVersion[] {
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/containerd-shim-runc-v2') || !existsSync('/usr/bin/ctr')) {
    throw new Error('containerd 1.6 is missing (/usr/bin/containerd, ctr, containerd-shim-runc-v2): apt-get install containerd (build/test-tools.sh does)');
  }
  return [
    { name: '1.6', runtime: 'containerd1', binDir: '/usr/bin' },
    { name: '2.1', runtime: 'containerd', binDir: unstableBinDir() },
  ];
}

/** A process holding a private mount namespace with its own /etc/hosts. */
export interface MountNamespace {
  readonly pid: number;
  /** The argv prefix that runs a command inside it, in `cwd`. */
  enter(cwd: string): string[];
  /** Mount points inside it, as /proc/PID/mountinfo lists them. */
  mounts(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startMountNamespace(dir: string, names: readonly string[]): Promise<MountNamespace> {
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, ['127.0.0.1 localhost', ...names.map((n) => `127.0.0.1 ${n}`), ''].join('\n'));
  const ready = path.join(dir, 'namespace-ready');
  const script = 'mkdir -p /run/containerd && mount -t tmpfs -o mode=0711 pause-build-test /run/containerd && mount --bind "$1" /etc/hosts && : > "$2" && exec sleep 3600';
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', hosts, ready], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(ready); i++) {
    if (child.exitCode !== null) throw new Error(`unshare --mount exited with ${child.exitCode}`);
    await sleep(50);
  }
  if (!existsSync(ready)) throw new Error('the mount namespace did not come up within 5 s');
  const pid = child.pid!;
  return {
    pid,
    enter: (cwd) => ['nsenter', '-t', String(pid), '-m', `--wd=${cwd}`, '--'],
    mounts: async () => (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).trim().split('\n'),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export interface Containerd {
  readonly version: ContainerdVersion;
  readonly dir: string;
  readonly socket: string;
  readonly pid: number;
  readonly logPath: string;
  /** The config file it runs with. */
  readonly config: string;
  readonly cri: CriClient;
  /** `ctr` of the same version on this instance's socket, in the CRI namespace. */
  ctr(args: readonly string[]): Promise<string>;
  /** Processes of this instance's shims (their command line names its socket). */
  shims(): Promise<number[]>;
  stop(): Promise<void>;
}

type Table = Record<string, any>;

function table(parent: Table, ...keys: string[]): Table {
  let t = parent;
  for (const k of keys) t = (t[k] ??= {}) as Table;
  return t;
}

/** The printed config.toml with this instance's paths and this machine's needs merged in. */
export function instanceConfig(printed: string, version: ContainerdVersion, dir: string): string {
  const config = parse(printed) as Table;
  config.root = path.join(dir, 'root');
  config.state = path.join(dir, 'state');
  table(config, 'grpc').address = path.join(dir, 'containerd.sock');
  table(config, 'ttrpc').address = path.join(dir, 'containerd.sock.ttrpc');
  table(config, 'plugins', 'io.containerd.internal.v1.opt').path = path.join(dir, 'opt');
  if (version.runtime === 'containerd') {
    table(config, 'plugins', 'io.containerd.cri.v1.runtime').restrict_oom_score_adj = true;
    table(config, 'plugins', 'io.containerd.nri.v1.nri').disable = true;
  } else {
    table(config, 'plugins', 'io.containerd.grpc.v1.cri').restrict_oom_score_adj = true;
  }
  return `${stringify(config)}\n`;
}

async function processesNaming(text: string, except: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === except) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

export async function startContainerd(version: ContainerdVersion, dir: string, printedConfig: string, ns: MountNamespace): Promise<Containerd> {
  await mkdir(dir, { recursive: true });
  const config = path.join(dir, 'config.toml');
  const socket = path.join(dir, 'containerd.sock');
  const logPath = path.join(dir, 'containerd.log');
  await writeFile(config, instanceConfig(printedConfig, version, dir));
  const env = { ...process.env, PATH: `${version.binDir}:/usr/sbin:/usr/bin:/sbin:/bin` };
  const log = await import('node:fs').then((fs) => fs.openSync(logPath, 'a'));
  const child: ChildProcess = spawn(ns.enter(dir)[0]!, [...ns.enter(dir).slice(1), path.join(version.binDir, 'containerd'), '--config', config], { env, stdio: ['ignore', log, log] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ctrBinary = path.join(version.binDir, 'ctr');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    // Anything it left (a shim, a mount) is removed here, so that a failed test leaves nothing behind.
    for (const pid of await processesNaming(socket, process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone already */ }
    }
    const mine = (await ns.mounts()).map((l) => l.split(' ')[4]!).filter((m) => m.startsWith(`${dir}/`)).reverse();
    for (const m of mine) await execa(ns.enter('/')[0]!, [...ns.enter('/').slice(1), 'umount', '-l', m], { reject: false });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let cri: CriClient | undefined;
    for (let i = 0; i < 150; i++) {
      if (child.exitCode !== null) throw new Error(`containerd ${version.name} exited with ${child.exitCode}:\n${(await readFile(logPath, 'utf8')).slice(-3000)}`);
      if (existsSync(socket)) {
        const c = await criClient(socket);
        const ok = await c.call('Version', { version: 'v1' }, 2000).then(() => true, () => false);
        if (ok) {
          cri = c;
          break;
        }
        c.close();
      }
      await sleep(100);
    }
    if (!cri) throw new Error(`containerd ${version.name} did not answer on ${socket} within 15 s:\n${(await readFile(logPath, 'utf8')).slice(-3000)}`);
    const client = cri;
    return {
      version,
      dir,
      socket,
      pid: child.pid!,
      logPath,
      config,
      cri: client,
      async ctr(args) {
        const r = await execa(ctrBinary, ['--address', socket, '--namespace', 'k8s.io', ...args], { env });
        return r.stdout;
      },
      shims: async () => {
        const pids = await processesNaming(socket, child.pid!);
        const names = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
        return pids.filter((_, i) => names[i]!.includes('containerd-shim'));
      },
      async stop() {
        // A test that failed half-way leaves pods: taken down as the kubelet would, before containerd goes.
        const pods = await client.call<{ items: { id: string }[] }>('ListPodSandbox', {}, 5000).catch(() => ({ items: [] }));
        for (const pod of pods.items) {
          await client.call('StopPodSandbox', { pod_sandbox_id: pod.id }, 20_000).catch(() => undefined);
          await client.call('RemovePodSandbox', { pod_sandbox_id: pod.id }, 20_000).catch(() => undefined);
        }
        client.close();
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
