/**
 * What the bench reads back from its plain-HTTP loopback registries, outside the timings:
 * the digest a tag points at (to check that each side really published or copied what it
 * claims), and each platform's layer sizes, compressed and as a tar.
 */
import { gunzipSync } from 'node:zlib';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly architecture: string; readonly os: string; readonly variant?: string };
}

interface Manifest {
  readonly mediaType?: string;
  readonly manifests?: readonly Descriptor[];
  readonly layers?: readonly Descriptor[];
}

/** `host:port/path/repo` → base URL and repository name. */
function split(repository: string): { base: string; repo: string } {
  const slash = repository.indexOf('/');
  return { base: `http://${repository.slice(0, slash)}/v2/${repository.slice(slash + 1)}`, repo: repository.slice(slash + 1) };
}

/** The digest `repository:reference` resolves to, or undefined when there is none. */
export async function digestOf(repository: string, reference: string): Promise<string | undefined> {
  const { base } = split(repository);
  const res = await fetch(`${base}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`HEAD ${repository}:${reference}: HTTP ${res.status}`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

async function getJson(url: string): Promise<Manifest> {
  const res = await fetch(url, { headers: { Accept: ACCEPT } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as Manifest;
}

export interface PlatformSize {
  /** amd64, arm, … (the Kubernetes arch name). */
  readonly arch: string;
  /** Sum of the layer blobs as stored (gzip). */
  readonly compressed: number;
  /** Sum of the layers as tar streams (what gzip wraps). */
  readonly uncompressed: number;
}

/** Layer sizes of every platform in the index `repository:reference`. */
export async function platformSizes(repository: string, reference: string): Promise<PlatformSize[]> {
  const { base } = split(repository);
  const index = await getJson(`${base}/manifests/${reference}`);
  const out: PlatformSize[] = [];
  for (const entry of index.manifests ?? []) {
    const manifest = await getJson(`${base}/manifests/${entry.digest}`);
    let compressed = 0;
    let uncompressed = 0;
    for (const layer of manifest.layers ?? []) {
      const res = await fetch(`${base}/blobs/${layer.digest}`);
      if (!res.ok) throw new Error(`GET blob ${layer.digest}: HTTP ${res.status}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      compressed += bytes.length;
      uncompressed += /gzip/.test(layer.mediaType) ? gunzipSync(bytes).length : bytes.length;
    }
    out.push({ arch: entry.platform?.architecture ?? 'unknown', compressed, uncompressed });
  }
  return out;
}
