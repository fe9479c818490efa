/**
 * What every scenario of the bench shares: a temporary root under /tmp/wt-bench-*, the
 * pause-build CLI as users run it (dist/cli.js, bundled from this checkout), the upstream-style
 * script, the builder image, loopback registries, podman images named localhost/pause-bench/…,
 * and a cleanup list that is run in reverse at the end, on failure and on interrupt.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TestRegistry, startRegistry } from '../../test/support/registry.ts';
import { type RunOptions, type Timed, childEnv, timed } from './process.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const UPSTREAM_FLOW = path.join(ROOT, 'bench', 'upstream-flow.sh');
export const ARCHES = ['amd64', 'arm', 'arm64', 'ppc64le', 's390x'] as const;

type Cleanup = () => Promise<unknown>;

export class Bench {
  /** Distinguishes this run's revisions, repositories and podman names from any other's. */
  readonly id = randomBytes(3).toString('hex');
  private readonly cleanups: Cleanup[] = [];

  private constructor(
    readonly tmp: string,
    /** The version tag pause-build publishes (from VERSION), e.g. 3.10. */
    readonly tag: string,
  ) {}

  static async create(tag: string): Promise<Bench> {
    const tmp = await mkdtemp('/tmp/wt-bench-');
    const bench = new Bench(tmp, tag);
    bench.defer(() => rm(tmp, { recursive: true, force: true }));
    return bench;
  }

  /** Registers a cleanup; the function returned runs it now (once) and drops it from the list. */
  defer(fn: Cleanup): () => Promise<void> {
    let done = false;
    const once: Cleanup = async () => {
      if (done) return;
      done = true;
      await fn();
    };
    this.cleanups.push(once);
    return async () => {
      this.cleanups.splice(this.cleanups.indexOf(once), 1);
      await once();
    };
  }

  async cleanup(): Promise<void> {
    while (this.cleanups.length > 0) {
      const fn = this.cleanups.pop()!;
      await fn().catch((e: unknown) => process.stderr.write(`bench: cleanup: ${(e as Error).message}\n`));
    }
  }

  async dir(name: string): Promise<string> {
    const d = path.join(this.tmp, name);
    await mkdir(d, { recursive: true });
    return d;
  }

  /** A checkout-like directory for the upstream-style flow: pause.c and the top-level Dockerfile. */
  async workdir(name: string): Promise<string> {
    const d = await this.dir(name);
    await copyFile(path.join(ROOT, 'build', 'pause', 'pause.c'), path.join(d, 'pause.c'));
    await copyFile(path.join(ROOT, 'Dockerfile'), path.join(d, 'Dockerfile'));
    return d;
  }

  /** A fresh distribution registry on a free loopback port; `stop` is also run at cleanup. */
  async registry(): Promise<TestRegistry & { release(): Promise<void> }> {
    const reg = await startRegistry({ dirPrefix: path.join(this.tmp, 'registry-') });
    return { ...reg, release: this.defer(() => reg.stop()) };
  }

  /** pause-build as a CI job runs it: plain progress lines on stderr, results on stdout. */
  pauseBuild(args: readonly string[], opts: RunOptions = {}): Promise<Timed> {
    return timed(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv({ CI: 'true' }), ...opts });
  }

  upstreamFlow(args: readonly string[]): Promise<Timed> {
    return timed('bash', [UPSTREAM_FLOW, ...args], { cwd: ROOT });
  }

  /** podman names for one upstream-style run; removeImages deletes them with their build layers. */
  podmanName(label: string): string {
    return `localhost/pause-bench/${this.id}-${label}`;
  }

  async removeImages(name: string): Promise<void> {
    await timed('podman', ['manifest', 'rm', `${name}/pause:${this.tag}`]);
    // rmi also removes the untagged intermediate images of each build, so no layer cache is left.
    await timed('podman', ['rmi', '--ignore', ...ARCHES.map((a) => `${name}/pause-${a}:${this.tag}`)]);
  }
}
