/**
 * A layer from the files one ADD or COPY adds: their tar (with the parent directories a
 * nested destination needs, as Docker writes them), its diff_id, and the gzip blob.
 */
import { PauseBuildError } from '../errors.ts';
import { blobOf, sha256Digest } from './blob.ts';
import { type TarEntry, gzip, writeTar } from './tar.ts';
import { type Blob, MEDIA_TYPES } from './types.ts';

export interface LayerFile {
  /** Absolute path in the image. */
  readonly dest: string;
  readonly content: Uint8Array;
  /** Permission bits, e.g. 0o755. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Layer {
  /** The compressed layer, as the manifest lists it. */
  readonly blob: Blob;
  /** sha256 of the uncompressed tar, as the config lists it. */
  readonly diffId: string;
  /** Uncompressed size. */
  readonly tarSize: number;
}

/**
 * Tar entries for `files`: each file, and each parent directory of a nested destination
 * (`/usr/bin/pause` adds `usr/` and `usr/bin/`, mode 0755, owned by root), since Docker
 * and podman include them too. `/pause` alone has no parent entry: `/` is never written.
 */
export function layerEntries(files: readonly LayerFile[]): TarEntry[] {
  const entries = new Map<string, TarEntry>();
  for (const f of files) {
    const parts = f.dest.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = entries.get(dir);
      if (existing?.type === 'file') throw new PauseBuildError(`layer: ${dir} is both a file and a directory`);
      if (!existing) entries.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0 });
    }
    const file = parts.join('/');
    if (entries.get(file)?.type === 'dir') throw new PauseBuildError(`layer: ${file} is both a directory and a file`);
    entries.set(file, { path: file, type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, content: f.content });
  }
  return [...entries.values()];
}

/** The uncompressed layer: a tar of `files`, dated `mtime`. */
export function layerTar(files: readonly LayerFile[], mtime: number): Uint8Array {
  return writeTar(layerEntries(files), mtime);
}

/** A layer from its tar and that tar's gzip (as gzip() makes it, however it was obtained). */
export function layerOf(tar: Uint8Array, gzipped: Uint8Array): Layer {
  return { blob: blobOf(gzipped, { mediaType: MEDIA_TYPES.layerGzip }), diffId: sha256Digest(tar), tarSize: tar.length };
}

export function buildLayer(files: readonly LayerFile[], mtime: number): Layer {
  const tar = layerTar(files, mtime);
  return layerOf(tar, gzip(tar));
}
