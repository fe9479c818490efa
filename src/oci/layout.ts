/**
 * OCI image layouts on disk (as go-containerregistry's pkg/v1/layout writes them):
 * `oci-layout`, `blobs/sha256/<hex>` and `index.json`, whose entries carry the tag in
 * `org.opencontainers.image.ref.name`.
 *
 * Writing is safe to repeat and to interrupt: each blob goes to a temp file then is
 * renamed into place, a blob already there with the right digest is kept, and index.json
 * is written last (also by rename), so it never names a blob that is not there yet.
 * Reading verifies every blob's size and digest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Limiter, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { canonicalJson, sha256Digest } from './blob.ts';
import { MANIFEST_LIMIT, INDEX_TYPES as INDEX_MEDIA_TYPES, IMAGE_TYPES, TAG_RE, isDigest, parseDescriptor } from './manifest.ts';
import { type Artifact, referrerDescriptor } from './referrers.ts';
import { type Blob, type BuiltImage, type BuiltIndex, type Descriptor, MEDIA_TYPES, type OciPlatform } from './types.ts';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = 'oci-layout';
const INDEX_FILE = 'index.json';
const LAYOUT_VERSION = '1.0.0';
/** Held while a run writes the layout. */
const LOCK_FILE = '.pause-build.lock';
const INDEX_TYPES = INDEX_MEDIA_TYPES;
const MANIFEST_TYPES = IMAGE_TYPES;

export interface LayoutWriteResult {
  readonly dir: string;
  readonly tag: string;
  /** Blobs written now. */
  readonly written: number;
  /** Blobs that were already there with the right content. */
  readonly reused: number;
}

/** `oci:<dir>:<tag>` as skopeo takes it, the dir relative to `cwd` when it is below it. */
export function layoutReference(dir: string, tag: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, path.resolve(cwd, dir));
  const shown = rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(cwd, dir) : rel;
  return `oci:${shown}:${tag}`;
}

export function blobPath(dir: string, digest: string): string {
  if (!isDigest(digest)) throw new PauseBuildError(`invalid digest "${digest}" in ${dir}`, { hint: 'only sha256 digests are supported' });
  return path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function writeAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

/** A layout's own small file (oci-layout, index.json): a regular file of bounded size, or undefined when absent. */
async function readOptional(file: string): Promise<Buffer | undefined> {
  const info = await lstat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  });
  if (info === undefined) return undefined;
  if (!info.isFile()) throw new PauseBuildError(`${file} is not a regular file (${kindOf(info)})`, { hint: 'a layout holds regular files only; remove it' });
  if (info.size > MANIFEST_LIMIT) throw new PauseBuildError(`${file} is ${info.size} bytes, above the ${MANIFEST_LIMIT / 1024 / 1024} MiB limit`, { hint: 'remove it; it is not a layout file' });
  return readFile(file, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK });
}

function parseJson(bytes: Uint8Array, what: string, dir: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new PauseBuildError(`${what} in ${dir} is not valid JSON`, { hint: `remove ${dir} and build it again with pause-build image` });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Refuses to scatter blobs into a directory that holds something other than a layout. */
async function checkIsLayoutOrEmpty(dir: string): Promise<void> {
  const marker = await readOptional(path.join(dir, LAYOUT_FILE));
  if (marker !== undefined) {
    const parsed = parseJson(marker, LAYOUT_FILE, dir);
    if (!isRecord(parsed) || typeof parsed.imageLayoutVersion !== 'string') {
      throw new PauseBuildError(`${dir}/${LAYOUT_FILE} is not an OCI layout marker`, { hint: `remove ${dir} or choose another --output` });
    }
    return;
  }
  const names = await readdir(dir).catch(() => [] as string[]);
  // Another pause-build holds the lock and is making this directory a layout (its marker is
  // written under the lock, through a temp file a look may catch); this run's write waits for it.
  if (names.includes(LOCK_FILE)) return;
  if (names.length > 0) {
    throw new PauseBuildError(`${dir} is not empty and is not an OCI image layout`, { hint: 'choose a new or empty --output directory' });
  }
}

/** Reads index.json if there is one: {} when absent, an error when it is not an image index. */
async function readIndexForUpdate(dir: string): Promise<Record<string, unknown>> {
  const current = await readOptional(path.join(dir, INDEX_FILE));
  const top = current === undefined ? {} : parseJson(current, INDEX_FILE, dir);
  if (!isRecord(top) || (top.manifests !== undefined && !Array.isArray(top.manifests))) {
    throw new PauseBuildError(`${INDEX_FILE} in ${dir} is not an image index`, { hint: `remove ${dir} and build it again` });
  }
  return top;
}

/**
 * Whether `writeLayout(dir, …, tag)` can work: the tag is valid and `dir` is absent, empty,
 * or a layout whose marker and index.json can be read. Changes nothing; commands call it
 * before compiling, so that a bad --output costs nothing and leaves nothing.
 */
export async function checkLayoutTarget(dir: string, tag: string): Promise<void> {
  if (!TAG_RE.test(tag)) throw new PauseBuildError(`invalid tag "${tag}"`, { hint: 'use letters, digits, _ . - (at most 128, not starting with . or -)' });
  const exists = await readdir(dir).then(() => true, (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return false;
    if (e.code === 'ENOTDIR') throw new PauseBuildError(`${dir} is a file, not a directory`, { hint: 'choose a new or empty --output directory' });
    throw new PauseBuildError(`cannot read ${dir} (${e.code ?? e.message})`, { hint: 'choose another --output directory' });
  });
  if (!exists) return;
  await checkIsLayoutOrEmpty(dir);
  await readIndexForUpdate(dir);
}

/**
 * `artifacts` (referrers of the index or its images) are written after the index and
 * listed in index.json without a tag, as oras-go's layout store keeps them.
 */
export async function writeLayout(dir: string, built: BuiltIndex, tag: string, artifacts: readonly Artifact[] = []): Promise<LayoutWriteResult> {
  // Everything that can be refused is refused before the first blob is written.
  await checkLayoutTarget(dir, tag);
  const unlock = await lockLayout(dir);
  try {
    return await writeLocked(dir, built, tag, artifacts);
  } finally {
    await unlock();
  }
}

async function writeLocked(dir: string, built: BuiltIndex, tag: string, artifacts: readonly Artifact[]): Promise<LayoutWriteResult> {

  let written = 0;
  let reused = 0;
  // Children before parents, wave by wave (so that no blob names one that is not written
  // yet), each wave side by side: every blob is a file of its own, renamed into place.
  const waves = [
    [...built.images.flatMap((i) => [...i.layers, i.config]), ...artifacts.flatMap((a) => a.blobs)],
    built.images.map((i) => i.manifest),
    [built.index],
    artifacts.map((a) => a.manifest),
  ];
  const done = new Set<string>();
  const limiter = new Limiter(8);
  for (const wave of waves) {
    const blobs = wave.filter((b) => !done.has(b.descriptor.digest) && done.add(b.descriptor.digest));
    for (const b of blobs) if (sha256Digest(b.bytes) !== b.descriptor.digest) throw new PauseBuildError(`blob ${b.descriptor.digest} does not match its content (internal error)`);
    await settleAll(blobs.map((blob) => limiter.run(async () => {
      const file = blobPath(dir, blob.descriptor.digest);
      const existing = await readOptional(file);
      if (existing && sha256Digest(existing) === blob.descriptor.digest) {
        reused++;
        return;
      }
      await writeAtomic(file, blob.bytes);
      written++;
    })));
  }
  if ((await readOptional(path.join(dir, LAYOUT_FILE))) === undefined) {
    await writeAtomic(path.join(dir, LAYOUT_FILE), canonicalJson({ imageLayoutVersion: LAYOUT_VERSION }));
  }

  const top = await readIndexForUpdate(dir);
  // As go-containerregistry's ReplaceIndex: drop entries with this tag, append the new one.
  const referrers = new Set(artifacts.map((a) => a.manifest.descriptor.digest));
  const others = ((top.manifests as unknown[] | undefined) ?? []).filter((m) => !(isRecord(m) && ((isRecord(m.annotations) && m.annotations[REF_NAME] === tag) || referrers.has(m.digest as string))));
  const { mediaType, digest, size } = built.index.descriptor;
  const next = {
    ...top,
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [...others, { mediaType, digest, size, annotations: { [REF_NAME]: tag } }, ...artifacts.map((a) => referrerDescriptor(a))],
  };
  await writeAtomic(path.join(dir, INDEX_FILE), canonicalJson(next));
  return { dir, tag, written, reused };
}

function descriptorFrom(value: unknown, where: string, dir: string): Descriptor {
  return parseDescriptor(value, `${where} in ${dir}`, `remove ${dir} and build it again`);
}

/**
 * Opens a blob of the layout only when it is a regular file inside it: never through a
 * symlink (O_NOFOLLOW on the file, lstat on the directories above it), never a FIFO or a
 * device, and only when its size is the descriptor's. Nothing outside the layout is
 * opened, so nothing outside can be read or named by its digest.
 */
export async function openLayoutBlob(dir: string, descriptor: Descriptor): Promise<{ file: string; handle: FileHandle }> {
  const file = blobPath(dir, descriptor.digest);
  const shown = path.relative(process.cwd(), file) || file;
  const fix = `delete ${shown} and build again with pause-build image --output ${dir}`;
  for (const sub of [path.join(dir, 'blobs'), path.join(dir, 'blobs', 'sha256')]) {
    const s = await lstat(sub).catch(() => undefined);
    if (s && !s.isDirectory()) throw new PauseBuildError(`${sub} is not a directory inside the layout ${dir}`, { hint: `remove it; a layout's blobs are regular files under ${dir}/blobs/sha256` });
  }
  const info = await lstat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (info === undefined) throw new PauseBuildError(`blob ${descriptor.digest} is missing from ${dir}`, { hint: `build the layout again with pause-build image --output ${dir}` });
  if (info.isSymbolicLink()) throw new PauseBuildError(`blob ${descriptor.digest} in ${dir} is a symbolic link; it was not followed`, { hint: fix });
  if (!info.isFile()) throw new PauseBuildError(`blob ${descriptor.digest} in ${dir} is not a regular file (${kindOf(info)})`, { hint: fix });
  if (info.size !== descriptor.size) {
    throw new PauseBuildError(`blob ${descriptor.digest} in ${dir} is corrupt (${info.size} bytes, expected ${descriptor.size} bytes)`, { hint: fix });
  }
  const handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  const opened = await handle.stat();
  if (!opened.isFile() || opened.ino !== info.ino || opened.size !== descriptor.size) {
    await handle.close();
    throw new PauseBuildError(`blob ${descriptor.digest} in ${dir} changed while it was opened`, { hint: 'do not write to the layout while it is read' });
  }
  return { file, handle };
}

function kindOf(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isDirectory()) return 'a directory';
  if (s.isSocket()) return 'a socket';
  return 'not a file';
}

/** A blob of the layout, checked against its descriptor's digest and size. */
export async function readLayoutBlob(dir: string, descriptor: Descriptor, limit = Number.POSITIVE_INFINITY): Promise<Blob> {
  if (descriptor.size > limit) {
    throw new PauseBuildError(`${descriptor.digest} in ${dir} is declared as ${descriptor.size} bytes, above the ${limit} byte limit for a manifest`, { hint: `remove ${dir} and build it again` });
  }
  const { file, handle } = await openLayoutBlob(dir, descriptor);
  let bytes: Buffer;
  try {
    bytes = Buffer.alloc(descriptor.size);
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    bytes = bytes.subarray(0, at);
  } finally {
    await handle.close();
  }
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest || bytes.length !== descriptor.size) {
    throw new PauseBuildError(`blob ${descriptor.digest} in ${dir} is corrupt (${bytes.length} bytes with digest ${actual}, expected ${descriptor.size} bytes)`, {
      hint: `delete ${path.relative(process.cwd(), file) || file} and build again with pause-build image --output ${dir}`,
    });
  }
  return { descriptor, bytes: new Uint8Array(bytes) };
}

/** A manifest of the layout: its size capped before it is read. */
export function readLayoutManifest(dir: string, descriptor: Descriptor): Promise<Blob> {
  return readLayoutBlob(dir, descriptor, MANIFEST_LIMIT);
}

function defaultArchName(platform: OciPlatform | undefined): string {
  if (!platform) return 'unknown';
  return [platform.architecture, platform.variant].filter(Boolean).join('-');
}

async function readLayoutIndex(dir: string): Promise<Record<string, unknown>> {
  const marker = await readOptional(path.join(dir, LAYOUT_FILE)).catch(() => undefined);
  if (marker === undefined) {
    throw new PauseBuildError(`${dir} is not an OCI image layout (no ${LAYOUT_FILE} file)`, { hint: 'build one with pause-build image --output DIR' });
  }
  const parsedMarker = parseJson(marker, LAYOUT_FILE, dir);
  if (!isRecord(parsedMarker) || typeof parsedMarker.imageLayoutVersion !== 'string') {
    throw new PauseBuildError(`${dir}/${LAYOUT_FILE} is not an OCI layout marker`, { hint: `remove ${dir} and build it again` });
  }
  const bytes = await readOptional(path.join(dir, INDEX_FILE));
  if (bytes === undefined) throw new PauseBuildError(`${dir} has no ${INDEX_FILE}`, { hint: `build it again with pause-build image --output ${dir}` });
  const top = parseJson(bytes, INDEX_FILE, dir);
  if (!isRecord(top) || !Array.isArray(top.manifests)) throw new PauseBuildError(`${INDEX_FILE} in ${dir} is not an image index`, { hint: `remove ${dir} and build it again` });
  return top;
}

/** The tags index.json names, in its order. */
export async function layoutTags(dir: string): Promise<string[]> {
  const top = await readLayoutIndex(dir);
  return (top.manifests as unknown[]).flatMap((m) => (isRecord(m) && isRecord(m.annotations) && typeof m.annotations[REF_NAME] === 'string' ? [m.annotations[REF_NAME]] : []));
}

/** What index.json names `tag` (the last entry, when several do). */
export async function layoutEntry(dir: string, tag: string): Promise<Descriptor> {
  const top = await readLayoutIndex(dir);
  const entries = (top.manifests as unknown[]).filter((m) => isRecord(m) && isRecord(m.annotations) && m.annotations[REF_NAME] === tag);
  if (entries.length === 0) {
    const tags = await layoutTags(dir);
    throw new PauseBuildError(`no tag "${tag}" in ${dir}`, { hint: tags.length > 0 ? `its tags: ${tags.join(', ')}` : 'it has no tagged image; build one with pause-build image' });
  }
  return descriptorFrom(entries[entries.length - 1], `${INDEX_FILE} entry "${tag}"`, dir);
}

/** The multi-arch image tagged `tag`, every blob (index, manifests, configs, layers) read and verified. */
export async function readLayout(dir: string, tag: string, archOf: (platform: OciPlatform | undefined) => string = defaultArchName): Promise<BuiltIndex> {
  const found = await layoutEntry(dir, tag);
  if (!INDEX_TYPES.includes(found.mediaType)) {
    throw new PauseBuildError(`tag "${tag}" in ${dir} is ${found.mediaType}, not a multi-arch image index`, { hint: 'build it with pause-build image' });
  }
  const { mediaType, digest, size } = found;
  const index = await readLayoutManifest(dir, { mediaType, digest, size });
  const parsed = parseJson(index.bytes, `index ${digest}`, dir);
  if (!isRecord(parsed) || !Array.isArray(parsed.manifests)) throw new PauseBuildError(`index ${digest} in ${dir} has no manifests`, { hint: `remove ${dir} and build it again` });

  const images: BuiltImage[] = [];
  for (const [i, entry] of parsed.manifests.entries()) {
    const descriptor = descriptorFrom(entry, `index ${digest} manifest ${i}`, dir);
    if (!MANIFEST_TYPES.includes(descriptor.mediaType)) {
      throw new PauseBuildError(`index ${digest} in ${dir} lists a ${descriptor.mediaType}, not an image manifest`, { hint: 'nested indexes are not supported' });
    }
    const manifest = await readLayoutManifest(dir, descriptor);
    const body = parseJson(manifest.bytes, `manifest ${descriptor.digest}`, dir);
    if (!isRecord(body) || !Array.isArray(body.layers)) throw new PauseBuildError(`manifest ${descriptor.digest} in ${dir} has no layers list`, { hint: `remove ${dir} and build it again` });
    const config = await readLayoutBlob(dir, descriptorFrom(body.config, `manifest ${descriptor.digest} config`, dir));
    const layers: Blob[] = [];
    for (const [j, layer] of body.layers.entries()) layers.push(await readLayoutBlob(dir, descriptorFrom(layer, `manifest ${descriptor.digest} layer ${j}`, dir)));
    images.push({ arch: archOf(descriptor.platform), manifest, config, layers });
  }
  return { index, images };
}

// ---------------------------------------------------------------------------------------
// A layout as a copy's destination (mirror … oci:DIR[:TAG])

/**
 * Takes the layout's write lock (a file created exclusively), waiting up to `waitMs` for
 * another writer: two writers updating index.json at once would lose a tag.
 */
export async function lockLayout(dir: string, waitMs = 30_000): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      const release = () => rm(file, { force: true });
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        // The marker first: another run that looks meanwhile sees a layout, not a stray directory.
        if ((await readOptional(path.join(dir, LAYOUT_FILE))) === undefined) {
          await writeAtomic(path.join(dir, LAYOUT_FILE), canonicalJson({ imageLayoutVersion: LAYOUT_VERSION }));
        }
        await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
      } catch (e) {
        await release();
        throw e;
      }
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() > until) {
        throw new PauseBuildError(`${dir} is being written by another pause-build (${LOCK_FILE} is there)`, { hint: `wait for it, or remove ${path.join(dir, LOCK_FILE)} if no other run is writing` });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Refuses a destination directory that holds something other than a layout. */
export async function checkLayoutDestination(dir: string): Promise<void> {
  const exists = await readdir(dir).then(() => true, (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return false;
    throw new PauseBuildError(`cannot use ${dir} as a layout (${e.code ?? e.message})`, { hint: 'give a new or empty directory, or an OCI layout' });
  });
  if (!exists) return;
  await checkIsLayoutOrEmpty(dir);
  await readIndexForUpdate(dir);
}

/** What index.json tags `tag` now: its digest, or undefined (no layout, no such tag). */
export async function layoutTagDigest(dir: string, tag: string): Promise<string | undefined> {
  const top = await readIndexForUpdate(dir).catch((e: unknown) => {
    throw e;
  });
  const entries = ((top.manifests as unknown[] | undefined) ?? []).filter((m) => isRecord(m) && isRecord(m.annotations) && m.annotations[REF_NAME] === tag);
  const last = entries[entries.length - 1];
  return isRecord(last) && isDigest(last.digest) ? last.digest : undefined;
}

/** Whether the layout holds the blob: a regular file of the descriptor's size (its digest is checked when it is read). */
export async function layoutHasBlob(dir: string, d: Descriptor): Promise<boolean> {
  const info = await lstat(blobPath(dir, d.digest)).catch(() => undefined);
  return Boolean(info?.isFile() && info.size === d.size);
}

/** Writes a blob from a stream: to a temp file, checked against its digest and size, then renamed into place. */
export async function writeLayoutBlob(dir: string, d: Descriptor, content: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
  const file = blobPath(dir, d.digest);
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  const handle = await open(temp, 'wx');
  try {
    const chunks = content instanceof Uint8Array ? [content] : (content as unknown as AsyncIterable<Uint8Array>);
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (size > d.size) throw new PauseBuildError(`blob ${d.digest} is larger than its declared ${d.size} bytes`, { hint: 'the source sent other content; nothing was tagged' });
      hash.update(chunk);
      await handle.write(chunk);
    }
    await handle.close();
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== d.digest || size !== d.size) throw new PauseBuildError(`blob ${d.digest} arrived as ${got} (${size} bytes, expected ${d.size})`, { hint: 'the source changed or corrupted the content; nothing was tagged' });
    await rename(temp, file);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
}

/** Points tags at manifests already in the layout (as go-containerregistry's ReplaceIndex), the marker written first. Call under the lock. */
export async function tagLayout(dir: string, tags: readonly { tag: string; descriptor: Descriptor }[]): Promise<void> {
  if ((await readOptional(path.join(dir, LAYOUT_FILE))) === undefined) {
    await writeAtomic(path.join(dir, LAYOUT_FILE), canonicalJson({ imageLayoutVersion: LAYOUT_VERSION }));
  }
  const top = await readIndexForUpdate(dir);
  const named = new Set(tags.map((t) => t.tag));
  const others = ((top.manifests as unknown[] | undefined) ?? []).filter((m) => !(isRecord(m) && isRecord(m.annotations) && named.has(m.annotations[REF_NAME] as string)));
  const added = tags.map(({ tag, descriptor: { mediaType, digest, size } }) => ({ mediaType, digest, size, annotations: { [REF_NAME]: tag } }));
  const next = { ...top, schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [...others, ...added] };
  await writeAtomic(path.join(dir, INDEX_FILE), canonicalJson(next));
}

/**
 * Adds untagged entries (referrers: signatures, SBOMs) to index.json, each once, under the
 * layout's lock; tagged entries are left as they are.
 */
export async function addLayoutEntries(dir: string, entries: readonly Record<string, unknown>[]): Promise<number> {
  const unlock = await lockLayout(dir);
  try {
    const top = await readIndexForUpdate(dir);
    const manifests = [...((top.manifests as unknown[] | undefined) ?? [])];
    const listed = new Set(manifests.flatMap((m) => (isRecord(m) && !(isRecord(m.annotations) && typeof m.annotations[REF_NAME] === 'string') ? [m.digest as string] : [])));
    const added = entries.filter((e) => !listed.has(e.digest as string) && listed.add(e.digest as string));
    if (added.length === 0) return 0;
    await writeAtomic(path.join(dir, INDEX_FILE), canonicalJson({ ...top, schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [...manifests, ...added] }));
    return added.length;
  } finally {
    await unlock();
  }
}

/** The entries of index.json that carry no tag (referrers kept beside the images). */
export async function layoutUntagged(dir: string): Promise<{ descriptor: Descriptor; entry: Record<string, unknown> }[]> {
  const top = await readLayoutIndex(dir);
  return (top.manifests as unknown[]).flatMap((m, i) => {
    if (!isRecord(m) || (isRecord(m.annotations) && typeof m.annotations[REF_NAME] === 'string')) return [];
    try {
      return [{ descriptor: parseDescriptor(m, `${INDEX_FILE} entry ${i}`), entry: m }];
    } catch {
      return [];
    }
  });
}
