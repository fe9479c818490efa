/**
 * pause-build mirror beside skopeo copy --all, for one 5-platform index between two local
 * registries: wall time, median of RUNS runs each, into a fresh repository every run (a
 * cold copy: every blob uploaded) and into the same one again (a warm copy: all there).
 * Layers are 300 KB of random bytes, about the size of the real pause binaries.
 *
 *   node --import tsx bench/mirror.ts [RUNS]
 *
 * pause-build runs from dist/ when built (npm run build), else from source through tsx.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { jsonBlob, blobOf } from '../src/oci/blob.ts';
import { MEDIA_TYPES, type BuiltIndex } from '../src/oci/types.ts';
import { platformFor } from '../src/platforms.ts';
import { Listr } from 'listr2';
import { parseEntry } from '../src/mirror.ts';
import { RegistryClient } from '../src/registry/client.ts';
import { Engine } from '../src/registry/plan.ts';
import { publishIndex } from '../src/registry/publish.ts';
import { copyTasks, disposeSpools, newMirrorState, planTasks } from '../src/tasks/mirror.ts';
import { startRegistry } from '../test/support/registry.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 5);
const ARCHES = ['amd64', 'arm', 'arm64', 'ppc64le', 's390x'];

function index(): BuiltIndex {
  const images = ARCHES.map((arch) => {
    const platform = platformFor(arch).oci;
    const layer = blobOf(randomBytes(300 * 1024), { mediaType: MEDIA_TYPES.layerGzip });
    const config = jsonBlob({ architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] } }, { mediaType: MEDIA_TYPES.config });
    const manifest = jsonBlob({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: config.descriptor, layers: [layer.descriptor] }, { mediaType: MEDIA_TYPES.manifest, platform });
    return { arch, manifest, config, layers: [layer] };
  });
  const idx = jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: images.map((i) => ({ mediaType: i.manifest.descriptor.mediaType, digest: i.manifest.descriptor.digest, size: i.manifest.descriptor.size, platform: i.manifest.descriptor.platform })),
  }, { mediaType: MEDIA_TYPES.index });
  return { index: idx, images };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  const r = await execa(cmd, args, { reject: false, cwd: ROOT, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const src = await startRegistry();
const dst = await startRegistry();
try {
  await publishIndex(new RegistryClient({ insecure: [src.host] }), { registry: src.host, repository: 'pause' }, index(), { tags: ['3.10'] });
  const built = path.join(ROOT, 'dist', 'cli.js');
  const pauseBuild = existsSync(built) ? [process.execPath, built] : [process.execPath, '--import', 'tsx', path.join(ROOT, 'src', 'cli.ts')];
  const tools: Record<string, (repo: string) => [string, string[]]> = {
    'pause-build mirror': (repo) => [pauseBuild[0]!, [...pauseBuild.slice(1), 'mirror', `${src.host}/pause:3.10`, `${dst.host}/${repo}`, '--insecure-registry', `${src.host},${dst.host}`, '-q']],
    'skopeo copy --all': (repo) => ['skopeo', ['copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/pause:3.10`, `docker://${dst.host}/${repo}:3.10`]],
  };
  console.log(`${RUNS} runs each, pause-build from ${existsSync(built) ? 'dist/' : 'source (tsx)'}; 5 platforms, 10 blobs, ${((5 * 300) / 1024).toFixed(1)} MiB of layers`);
  for (const [name, command] of Object.entries(tools)) {
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const repo = `${name.split(' ')[0]}-${i}`;
      cold.push(await timed(...command(repo)));
      warm.push(await timed(...command(repo)));
    }
    console.log(`${name.padEnd(20)} cold median ${median(cold).toFixed(0)} ms (${cold.map((t) => t.toFixed(0)).join(', ')}); warm median ${median(warm).toFixed(0)} ms (${warm.map((t) => t.toFixed(0)).join(', ')})`);
  }
  // The same copy inside this process: the work alone, without starting node and loading modules.
  const inProcess = async (repo: string): Promise<number> => {
    const started = process.hrtime.bigint();
    const client = new RegistryClient({ insecure: [src.host, dst.host] });
    const input = { client, engine: new Engine(client), entries: [parseEntry({ source: `${src.host}/pause:3.10`, destinations: [`${dst.host}/${repo}`] })], jobs: 4 };
    const state = newMirrorState();
    await new Listr(planTasks(input, state), { renderer: 'silent' }).run();
    await new Listr(copyTasks(input, state), { renderer: 'silent' }).run();
    await disposeSpools(state);
    if (state.failures.length) throw state.failures[0];
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    cold.push(await inProcess(`in-process-${i}`));
    warm.push(await inProcess(`in-process-${i}`));
  }
  console.log(`${'in process (API)'.padEnd(20)} cold median ${median(cold).toFixed(0)} ms; warm median ${median(warm).toFixed(0)} ms`);
  const node = await timed(process.execPath, ['-e', '0']);
  console.log(`(node -e 0 alone: ${node.toFixed(0)} ms)`);
} finally {
  await Promise.all([src.stop(), dst.stop()]);
}
