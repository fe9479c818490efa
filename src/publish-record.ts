/**
 * What a successful publish leaves in the cache: a hash of every input that decides what
 * it pushed → what it pushed (the index, each arch's digest and size, each tag and the
 * digest it holds). A later publish of the same inputs asks the registry whether every tag
 * still holds its recorded digest and, if so, stops there: nothing is compiled, run,
 * assembled or pushed. The registry's answer is the proof; the record only says which
 * question to ask.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from './oci/blob.ts';
import { isDigest } from './oci/manifest.ts';
import { lentBundleHash } from './packages.ts';

export interface PublishInputs {
  /** The code that assembles images (see toolFingerprint): another version may assemble differently. */
  readonly tool: string;
  /** Per arch, in index order: its compile cache key (builder image, source, flags, version string). */
  readonly binaries: readonly { readonly arch: string; readonly key: string }[];
  /** Whether each binary was run before it was packaged. */
  readonly emulate: boolean;
  readonly dockerfile: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Files the Dockerfile adds other than the binaries being built. */
  readonly contextFiles: readonly { readonly source: string; readonly sha256: string; readonly mode: number }[];
  /** SOURCE_DATE_EPOCH */
  readonly epoch: number;
  readonly version: string;
  readonly revision: string;
  readonly sourceUrl: string;
  readonly tags: readonly string[];
  readonly perArchTags: boolean;
  /** host/repository */
  readonly target: string;
  /** What is attached: SBOM and provenance (documents), signed by the key with this hint. */
  readonly attestations?: { readonly documents: boolean; readonly signer?: string };
}

export function publishKey(inputs: PublishInputs): string {
  return createHash('sha256').update('pause-build publish record v1\0').update(canonicalJson(inputs)).digest('hex');
}

export interface PublishRecord {
  readonly version: string;
  /** host/repository */
  readonly repository: string;
  /** The index digest. */
  readonly digest: string;
  /** host/repository@sha256:… */
  readonly reference: string;
  /** Every tag written, per-arch tags first, with the digest it holds. */
  readonly tags: readonly { readonly tag: string; readonly digest: string }[];
  readonly images: readonly { readonly arch: string; readonly platform: string; readonly digest: string; readonly size: number }[];
}

function isRecord(x: unknown): x is PublishRecord {
  const r = x as PublishRecord;
  const str = (v: unknown) => typeof v === 'string' && v !== '';
  return (
    typeof r === 'object' && r !== null &&
    str(r.version) && str(r.repository) && isDigest(r.digest) && str(r.reference) &&
    Array.isArray(r.tags) && r.tags.length > 0 && r.tags.every((t) => str(t?.tag) && isDigest(t?.digest)) &&
    Array.isArray(r.images) && r.images.length > 0 &&
    r.images.every((i) => str(i?.arch) && str(i?.platform) && isDigest(i?.digest) && Number.isSafeInteger(i?.size))
  );
}

/** Records in one directory, a file per key. Unreadable or malformed records count as none. */
export class PublishRecords {
  constructor(readonly dir: string) {}

  private file(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  async read(key: string): Promise<PublishRecord | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.file(key), 'utf8')) as unknown;
      return isRecord(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  /** A record that cannot be written only costs the full pipeline next time. */
  async write(key: string, record: PublishRecord): Promise<void> {
    const target = this.file(key);
    const tmp = `${target}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
      await rename(tmp, target);
    } catch {
      await rm(tmp, { force: true });
    }
  }
}

/**
 * The code that decides an image's bytes, as a hash: pause-build's version, the gzip
 * format, and the source of the OCI modules and the arch table as they are on disk. A
 * change to any of them (a new release, or a checkout with local changes) makes every
 * earlier record unusable, so a record never vouches for what this code would not build.
 */
/** Set (by esbuild's define) only in the bundle (dist/main.js). */
declare const PAUSE_BUILD_BUNDLED: true | undefined;

export async function toolFingerprint(packageVersion: string, layerFormat: string): Promise<string> {
  const h = createHash('sha256').update(`${packageVersion}\0${layerFormat}\0`);
  // The bundled CLI holds the OCI modules inside itself: the whole bundle is what is on disk,
  // by its sha256 (the bin's, when it ran the bundle and hashed it already).
  if (typeof PAUSE_BUILD_BUNDLED !== 'undefined') {
    const bundle = lentBundleHash() ?? createHash('sha256').update(await readFile(fileURLToPath(import.meta.url))).digest();
    return h.update(bundle).digest('hex');
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  const ociDir = path.join(here, 'oci');
  const files = [
    ...(await readdir(ociDir)).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(ociDir, f)),
    path.join(here, `platforms${ext}`),
  ];
  for (const file of files) h.update(`${path.basename(file)}\0`).update(await readFile(file)).update('\0');
  return h.digest('hex');
}
