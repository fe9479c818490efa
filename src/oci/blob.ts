/**
 * Content addressing: sha256 digests, canonical JSON (so the same document always has
 * the same bytes, hence the same digest), and blobs made from either.
 */
import { createHash } from 'node:crypto';
import type { Blob, Descriptor } from './types.ts';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** `sha256:` and the first 12 hex digits: enough to tell digests apart in messages and titles. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 7 + 12);
}

/**
 * JSON with object keys in code-point order at every level and no whitespace. Arrays keep
 * their order; undefined members are dropped as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) out[key] = sortKeys(member);
    }
    return out;
  }
  return value;
}

export function blobOf(bytes: Uint8Array, descriptor: Omit<Descriptor, 'digest' | 'size'>): Blob {
  return { descriptor: { ...descriptor, digest: sha256Digest(bytes), size: bytes.byteLength }, bytes };
}

export function jsonBlob(value: unknown, descriptor: Omit<Descriptor, 'digest' | 'size'>): Blob {
  return blobOf(new TextEncoder().encode(canonicalJson(value)), descriptor);
}

/** The descriptor as it is written inside a manifest or index: only the fields that are set. */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, platform: d.platform, annotations: d.annotations };
}
