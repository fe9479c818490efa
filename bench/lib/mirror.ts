/**
 * The mirror scenario: `pause-build mirror` (the CLI, as users run it) beside crane, oras and
 * skopeo, copying between loopback registries. Four rows:
 * - one 5-platform image;
 * - twenty tags with distinct content: twenty releases, 3.0 … 3.19, each published by
 *   pause-build with its own version compiled in (twenty indexes over a hundred images);
 * - twenty tags with shared content: t00 … t19, all on the one image above;
 * - one image with a single 300 MiB layer, with each tool's peak RSS.
 * Every timed copy goes to a registry started for it alone, so no tool finds blobs (or blob
 * locations it remembers) from an earlier copy; the digests are checked after every copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unstableTool } from '../../test/support/tools.ts';
import type { Bench } from './bench.ts';
import { type Timed, childEnv, timed } from './process.ts';
import { digestOf } from './registry-api.ts';

export const MANY_TAGS = Array.from({ length: 20 }, (_, i) => `3.${i}`);
/** The range that selects MANY_TAGS in `pause-build mirror --tags`. */
export const MANY_RANGE = '>=3.0.0 <4.0.0';
export const SHARED_TAGS = Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, '0')}`);
export const BIG_LAYER = 300 * 1024 * 1024;

/**
 * `pause-build --no-referrers` copies what crane copy and oras cp (without -r) copy: the image
 * alone. The judged column stays pause-build's default, which carries signatures, SBOMs and
 * provenance with the image.
 */
export const ALONE = 'pause-build --no-referrers';
export const TOOLS = ['pause-build', ALONE, 'crane', 'oras', 'skopeo'] as const;
export type Tool = (typeof TOOLS)[number];
export const ROWS = ['one', 'distinct', 'shared', 'big'] as const;
export type Row = (typeof ROWS)[number];

/** Timings (seconds) and peak RSS (bytes) of one tool on one row, or why it failed. */
export type Cell = { readonly seconds: number[]; readonly rss: number[]; readonly how: string } | { readonly error: string; readonly how: string };

export type MirrorMeasured = Record<Row, Record<Tool, Cell>>;

function firstError(r: Timed): string {
  const lines = (r.stderr.trim() || r.stdout.trim()).split('\n').map((l) => l.trim()).filter(Boolean);
  return `exit ${r.exitCode}: ${lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? 'no output'}`;
}

async function expectSame(what: string, src: string, dst: string, tags: readonly string[]): Promise<void> {
  const [a, b] = await Promise.all([Promise.all(tags.map((t) => digestOf(src, t))), Promise.all(tags.map((t) => digestOf(dst, t)))]);
  const wrong = tags.filter((_, i) => !a[i] || a[i] !== b[i]);
  if (wrong.length > 0) throw new Error(`${what}: ${dst} does not hold the source digests for ${wrong.join(', ')}`);
}

/** Whether every default arch has its cross compiler on this host. */
async function hostCompilers(): Promise<boolean> {
  const triples = ['x86_64-linux-gnu', 'arm-linux-gnueabihf', 'aarch64-linux-gnu', 'powerpc64le-linux-gnu', 's390x-linux-gnu'];
  const r = await timed('sh', ['-c', triples.map((t) => `command -v ${t}-gcc >/dev/null`).join(' && ')]);
  return r.exitCode === 0;
}

/** One command under GNU time: its wall time (ours, from spawn to exit) and its peak RSS. */
async function measured(bench: Bench, cmd: string, args: readonly string[]): Promise<Timed & { rss: number }> {
  const file = path.join(bench.tmp, `rss-${randomBytes(4).toString('hex')}`);
  const r = await timed('/usr/bin/time', ['-f', '%M', '-o', file, cmd, ...args], { env: childEnv({ CI: 'true' }), timeout: 600 });
  const kib = Number((await readFile(file, 'utf8').catch(() => '')).trim().split('\n').at(-1));
  await rm(file, { force: true });
  return { ...r, rss: Number.isFinite(kib) ? kib * 1024 : Number.NaN };
}

/** A step of a copy: the command and its arguments, for a source and a destination repository. */
type Step = readonly [string, readonly string[]];
interface Plan { readonly how: string; steps(src: string, dst: string): Step[] }

const SKOPEO_TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];

/** How each tool copies each row: its fastest documented way for that job. */
function plans(bench: Bench, cli: string, srcHost: string): Record<Row, Record<Tool, Plan>> {
  const crane = unstableTool('crane');
  const oras = unstableTool('oras');
  const pb = (extra: (dst: string) => string[]) => (src: string, dst: string): Step[] => [[process.execPath, [cli, 'mirror', '-q', src, dst, '--insecure-registry', srcHost, '--insecure-registry', dst.split('/')[0]!, ...extra(dst)]]];
  const tagged = (tags: readonly string[], fn: (s: string, d: string) => Step) => (src: string, dst: string): Step[] => tags.map((t) => fn(`${src}:${t}`, `${dst}:${t}`));
  const oneTag = [bench.tag];
  const oneImage = (tags: readonly string[]): Record<Tool, Plan> => ({
    'pause-build': { how: `pause-build mirror SRC:${tags[0]} DST`, steps: (s, d) => pb(() => [])(`${s}:${tags[0]}`, `${d}:${tags[0]}`) },
    [ALONE]: { how: `pause-build mirror --no-referrers SRC:${tags[0]} DST`, steps: (s, d) => pb(() => ['--no-referrers'])(`${s}:${tags[0]}`, `${d}:${tags[0]}`) },
    crane: { how: 'crane copy', steps: tagged(tags, (s, d) => [crane, ['copy', '--insecure', s, d]]) },
    oras: { how: 'oras cp', steps: tagged(tags, (s, d) => [oras, ['cp', '--from-plain-http', '--to-plain-http', s, d]]) },
    skopeo: { how: 'skopeo copy --all --preserve-digests', steps: tagged(tags, (s, d) => ['skopeo', ['copy', '--all', '--preserve-digests', '-q', ...SKOPEO_TLS, `docker://${s}`, `docker://${d}`]]) },
  });
  const manyTags = (tags: readonly string[], selector: string): Record<Tool, Plan> => ({
    'pause-build': { how: `pause-build mirror --tags '${selector}'`, steps: pb(() => ['--tags', selector]) },
    [ALONE]: { how: `pause-build mirror --no-referrers --tags '${selector}'`, steps: pb(() => ['--no-referrers', '--tags', selector]) },
    crane: { how: 'crane copy --all-tags', steps: (s, d) => [[crane, ['copy', '--insecure', '--all-tags', s, d]]] },
    // oras has no all-tags copy: one oras cp per tag.
    oras: { how: `oras cp ×${tags.length}`, steps: tagged(tags, (s, d) => [oras, ['cp', '--from-plain-http', '--to-plain-http', s, d]]) },
    // skopeo sync appends the source's last path element to the destination.
    skopeo: { how: 'skopeo sync --all', steps: (s, d) => [['skopeo', ['sync', '--all', '--preserve-digests', ...SKOPEO_TLS, '--src', 'docker', '--dest', 'docker', s, path.posix.dirname(d)]]] },
  });
  return {
    one: oneImage(oneTag),
    distinct: manyTags(MANY_TAGS, MANY_RANGE),
    shared: manyTags(SHARED_TAGS, SHARED_TAGS.join(',')),
    big: oneImage(['big']),
  };
}

/** An OCI layout holding one linux/amd64 image whose only layer is BIG_LAYER random bytes. */
async function bigLayout(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Uint8Array) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(path.join(dir, 'blobs', 'sha256', hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  // Random bytes, so that no registry or tool can shortcut them; the media type is only a label here.
  const layer = await put(randomBytes(BIG_LAYER));
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} })));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  }));
  const m = await put(manifest);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'big' } }],
  }));
}

export async function mirror(bench: Bench, cli: string, runs: number, log: (s: string) => void): Promise<MirrorMeasured> {
  const src = await bench.registry();
  const repos: Record<Row, string> = { one: `${src.host}/one/pause`, distinct: `${src.host}/many/pause`, shared: `${src.host}/shared/pause`, big: `${src.host}/big/pause` };
  const tagsOf: Record<Row, readonly string[]> = { one: [bench.tag], distinct: MANY_TAGS, shared: SHARED_TAGS, big: ['big'] };
  const dir = await bench.dir('mirror');
  const cache = path.join(dir, 'cache');

  // Sources, untimed: one release, twenty (two at a time; only their content matters, so the
  // host's cross compilers are used when there, as they are quicker than containers), twenty
  // tags of the one, and the big image.
  const engine = (await hostCompilers()) ? 'host' : 'podman';
  log(`mirror: making the source images (untimed, --engine ${engine})`);
  const publish = async (repository: string, version: string | undefined, revision: string) => {
    const out = path.join(dir, `${version ?? 'one'}`);
    const args = ['publish', '-q', '--engine', engine, '--no-emulation', '--cache-dir', cache, '--registry', repository, '--insecure-registry', src.host,
      '--revision', revision, '--bin-dir', path.join(out, 'bin'), '--output', path.join(out, 'oci'), ...(version ? ['--version', version] : [])];
    const r = await bench.pauseBuild(args);
    if (r.exitCode !== 0) throw new Error(`publishing the mirror source ${repository}${version ? `:${version}` : ''}: ${firstError(r)}`);
  };
  await publish(repos.one, undefined, `bench-${bench.id}-one`);
  const queue = [...MANY_TAGS];
  await Promise.all([0, 1].map(async () => {
    for (let v = queue.shift(); v !== undefined; v = queue.shift()) await publish(repos.distinct, v, `bench-${bench.id}-many`);
  }));
  const crane = unstableTool('crane');
  for (const t of SHARED_TAGS) {
    const r = await timed(crane, ['copy', '--insecure', `${repos.one}:${bench.tag}`, `${repos.shared}:${t}`]);
    if (r.exitCode !== 0) throw new Error(`tagging the shared source ${repos.shared}:${t}: ${firstError(r)}`);
  }
  const big = path.join(dir, 'big');
  await bigLayout(big);
  const pushed = await timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${big}:big`, `docker://${repos.big}:big`], { timeout: 600 });
  if (pushed.exitCode !== 0) throw new Error(`pushing the 300 MiB source: ${firstError(pushed)}`);
  await rm(big, { recursive: true, force: true });

  const table = plans(bench, cli, src.host);
  const cells = {} as Record<Row, Record<Tool, { seconds: number[]; rss: number[]; error?: string }>>;
  for (const row of ROWS) cells[row] = Object.fromEntries(TOOLS.map((t) => [t, { seconds: [], rss: [] }])) as never;

  for (let i = 0; i < runs; i++) {
    for (const row of ROWS) {
      const parts: string[] = [];
      // A different order each run, so that no tool is always first or last.
      for (let j = 0; j < TOOLS.length; j++) {
        const tool = TOOLS[(i + j) % TOOLS.length]!;
        const cell = cells[row][tool];
        if (cell.error) continue;
        const dst = await bench.registry();
        try {
          const target = `${dst.host}/${row}/pause`;
          let seconds = 0;
          let rss = 0;
          for (const [cmd, args] of table[row][tool].steps(repos[row], target)) {
            const r = await measured(bench, cmd, args);
            if (r.exitCode !== 0) throw new Error(`${path.basename(cmd)}: ${firstError(r)}`);
            seconds += r.seconds;
            rss = Math.max(rss, r.rss);
          }
          await expectSame(`${tool} (${row})`, repos[row], target, tagsOf[row]);
          cell.seconds.push(seconds);
          cell.rss.push(rss);
          parts.push(`${tool} ${seconds.toFixed(2)} s`);
        } catch (e) {
          cell.error = (e as Error).message;
          log(`mirror ${row}: ${tool} failed: ${cell.error}`);
        } finally {
          await dst.release();
        }
      }
      log(`mirror ${row} ${i + 1}/${runs}: ${parts.join(', ')}`);
    }
  }
  await src.release();
  const out = {} as MirrorMeasured;
  for (const row of ROWS) {
    out[row] = Object.fromEntries(TOOLS.map((t) => {
      const c = cells[row][t];
      const how = table[row][t].how;
      return [t, c.error ? { error: c.error, how } : { seconds: c.seconds, rss: c.rss, how }];
    })) as Record<Tool, Cell>;
  }
  return out;
}
