/**
 * Reads a repository straight from a plain-HTTP registry, with fetch and nothing of
 * pause-build's client: every tag, and under it every index, manifest, config and layer,
 * each checked against its digest and size. A tag that names anything missing or
 * different is an error: that is what a push must never leave behind.
 */
import { createHash } from 'node:crypto';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const INDEX_TYPES = new Set([ACCEPT.split(', ')[0], ACCEPT.split(', ')[2]]);

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
}

export interface WalkedTag {
  readonly tag: string;
  /** Digest of the manifest or index the tag names. */
  readonly digest: string;
  /** Every blob and manifest reached from it, verified. */
  readonly digests: readonly string[];
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function get(url: string, accept?: string): Promise<{ status: number; bytes: Uint8Array; type: string }> {
  const res = await fetch(url, { headers: accept ? { Accept: accept } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get('content-type') ?? '' };
}

/** Walks `host/repository`; throws an Error naming the first broken reference. */
export async function walkRepository(host: string, repository: string): Promise<WalkedTag[]> {
  const base = `http://${host}/v2/${repository}`;
  const list = await get(`${base}/tags/list`);
  if (list.status === 404) return [];
  if (list.status !== 200) throw new Error(`${repository}: tag list answered ${list.status}`);
  const tags = ((JSON.parse(Buffer.from(list.bytes).toString('utf8')) as { tags?: string[] | null }).tags ?? []).sort();
  const out: WalkedTag[] = [];
  for (const tag of tags) {
    const reached: string[] = [];
    const top = await get(`${base}/manifests/${tag}`, ACCEPT);
    if (top.status !== 200) throw new Error(`${repository}:${tag} is listed but its manifest answers ${top.status}`);
    const digest = sha256(top.bytes);
    const manifest = async (d: Descriptor, where: string) => {
      const m = await get(`${base}/manifests/${d.digest}`, ACCEPT);
      if (m.status !== 200) throw new Error(`${where}: manifest ${d.digest} is missing (${m.status})`);
      if (sha256(m.bytes) !== d.digest || m.bytes.byteLength !== d.size) throw new Error(`${where}: manifest ${d.digest} has other content`);
      reached.push(d.digest);
      return m;
    };
    const blob = async (d: Descriptor, where: string) => {
      const b = await get(`${base}/blobs/${d.digest}`);
      if (b.status !== 200) throw new Error(`${where}: blob ${d.digest} is missing (${b.status})`);
      if (sha256(b.bytes) !== d.digest || b.bytes.byteLength !== d.size) throw new Error(`${where}: blob ${d.digest} has other content`);
      reached.push(d.digest);
    };
    const image = async (doc: { config?: Descriptor; layers?: Descriptor[] }, where: string) => {
      if (!doc.config || !Array.isArray(doc.layers)) throw new Error(`${where}: not an image manifest`);
      await blob(doc.config, `${where} config`);
      for (const [i, layer] of doc.layers.entries()) await blob(layer, `${where} layer ${i}`);
    };
    const where = `${repository}:${tag}`;
    const doc = JSON.parse(Buffer.from(top.bytes).toString('utf8')) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    reached.push(digest);
    if (INDEX_TYPES.has(doc.mediaType ?? top.type) || Array.isArray(doc.manifests)) {
      for (const d of doc.manifests ?? []) {
        const m = await manifest(d, where);
        await image(JSON.parse(Buffer.from(m.bytes).toString('utf8')), `${where} → ${d.digest.slice(0, 19)}`);
      }
    } else {
      await image(doc, where);
    }
    out.push({ tag, digest, digests: reached });
  }
  return out;
}
