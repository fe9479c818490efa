/**
 * Verify before copying: an image is mirrored only when its index carries a valid
 * signature by one of the given keys. Two forms count, the two cosign writes:
 * - a sigstore bundle (cosign 3) attached as a referrer: its DSSE envelope verified by
 *   @sigstore/verify against the key, its in-toto statement naming the index digest;
 * - a legacy `sha256-<hex>.sig` manifest: each layer a simple-signing payload whose
 *   `docker-manifest-digest` must be the index digest, its signature in the layer's
 *   `dev.cosignproject.cosign/signature` annotation.
 * Keys are checked as `cosign verify --key --insecure-ignore-tlog` does: no log, no timestamp.
 */
import { verify as verifySignature } from 'node:crypto';
import type { TrustMaterial } from '@sigstore/verify';
import { PauseBuildError } from '../errors.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { Descriptor } from '../oci/types.ts';
import type { Attached } from '../registry/referrers.ts';
import type { VerifyKey } from './keys.ts';
import { importPackage } from '../packages.ts';

export type { VerifyKey };

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** A bundle or a simple-signing payload is a few KiB; anything much larger is not one. */
const MAX_SIGNATURE_BLOB = 1024 * 1024;

async function readBounded(a: Attached, d: Descriptor, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  if (d.size > MAX_SIGNATURE_BLOB) return undefined;
  const content = await a.source.blob(d, signal);
  if (!('stream' in content)) return undefined;
  const { stream } = content;
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    n += chunk.byteLength;
    if (n > d.size) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function trustFor(key: VerifyKey): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    // cosign --key ignores the bundle's hint: the key given is the one tried.
    publicKey: () => ({ publicKey: key.publicKey, validFor: () => true }),
  };
}

/** The verifying libraries, loaded when a signature is checked (most runs check none). */
let verifying: Promise<{ bundleFromJSON: typeof import('@sigstore/bundle').bundleFromJSON; Verifier: typeof import('@sigstore/verify').Verifier; toSignedEntity: typeof import('@sigstore/verify').toSignedEntity }> | undefined;
function verifyingLibraries() {
  verifying ??= Promise.all([importPackage<typeof import('@sigstore/bundle')>('@sigstore/bundle'), importPackage<typeof import('@sigstore/verify')>('@sigstore/verify')])
    .then(([bundle, verify]) => ({ bundleFromJSON: bundle.bundleFromJSON, Verifier: verify.Verifier, toSignedEntity: verify.toSignedEntity }));
  return verifying;
}

/** Whether a bundle is signed by `key` over a statement naming `digest`. */
export async function bundleSigns(bytes: Uint8Array, digest: string, key: VerifyKey): Promise<boolean> {
  const { bundleFromJSON, Verifier, toSignedEntity } = await verifyingLibraries();
  let bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(Buffer.from(bytes).toString('utf8')));
  } catch {
    return false;
  }
  if (bundle.content.$case !== 'dsseEnvelope') return false;
  try {
    new Verifier(trustFor(key), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
  } catch {
    return false;
  }
  let statement: { subject?: { digest?: { sha256?: string } }[] };
  try {
    statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8')) as typeof statement;
  } catch {
    return false;
  }
  return Array.isArray(statement.subject) && statement.subject.some((s) => `sha256:${s?.digest?.sha256}` === digest);
}

/** Whether a simple-signing payload names `digest` and its signature is by `key`. */
export function simpleSigningSigns(payload: Uint8Array, signature: string, digest: string, key: VerifyKey): boolean {
  let body: { critical?: { image?: { 'docker-manifest-digest'?: string } } };
  try {
    body = JSON.parse(Buffer.from(payload).toString('utf8')) as typeof body;
  } catch {
    return false;
  }
  if (body?.critical?.image?.['docker-manifest-digest'] !== digest) return false;
  try {
    return verifySignature('sha256', payload, key.publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** What was found on the index, for the refusal line. */
async function signedBy(a: Attached, digest: string, keys: readonly VerifyKey[], signal?: AbortSignal): Promise<{ kind: 'bundle' | 'sig' | 'other'; valid: boolean }> {
  const doc = await a.source.root(signal);
  let m;
  try {
    m = parseManifest(doc, a.source.name);
  } catch {
    return { kind: 'other', valid: false };
  }
  if (m.kind !== 'image') return { kind: 'other', valid: false };
  if (a.tag?.endsWith('.sig')) {
    for (const layer of m.layers) {
      const sig = layer.annotations?.[SIGNATURE_ANNOTATION];
      if (layer.mediaType !== SIMPLE_SIGNING || !sig) continue;
      const payload = await readBounded(a, layer, signal);
      if (payload && keys.some((k) => simpleSigningSigns(payload, sig, digest, k))) return { kind: 'sig', valid: true };
    }
    return { kind: 'sig', valid: false };
  }
  const bundleLayer = m.layers.find((l) => l.mediaType.startsWith('application/vnd.dev.sigstore.bundle'));
  if (!bundleLayer || a.subject !== digest) return { kind: 'other', valid: false };
  const bytes = await readBounded(a, bundleLayer, signal);
  if (!bytes) return { kind: 'bundle', valid: false };
  for (const k of keys) if (await bundleSigns(bytes, digest, k)) return { kind: 'bundle', valid: true };
  return { kind: 'bundle', valid: false };
}

/**
 * Throws a one-line refusal unless `attached` (what is attached to the index `digest`)
 * holds a valid signature by one of `keys`.
 */
export async function checkSignatures(image: string, digest: string, attached: readonly Attached[], keys: readonly VerifyKey[], signal?: AbortSignal): Promise<void> {
  const seen = { bundle: 0, sig: 0 };
  for (const a of attached.filter((x) => x.subject === digest)) {
    const r = await signedBy(a, digest, keys, signal);
    if (r.valid) return;
    if (r.kind !== 'other') seen[r.kind]++;
  }
  const found = seen.bundle + seen.sig === 0
    ? 'no signature at all'
    : `${[seen.bundle ? `${seen.bundle} sigstore bundle${seen.bundle === 1 ? '' : 's'}` : '', seen.sig ? `a legacy .sig tag` : ''].filter(Boolean).join(' and ')}, none valid for ${keys.length === 1 ? keys[0]!.file : `any of ${keys.length} keys`}`;
  throw new PauseBuildError(`refusing to mirror ${image} (${digest}): its index carries ${found}`, {
    hint: 'check the source and the --verify-key file; nothing was written',
  });
}
