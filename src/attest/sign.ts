/**
 * Sigstore bundles made with a key, as `cosign sign --key` and `cosign attest --key` make
 * them (cosign 3, new bundle format): a DSSE envelope over an in-toto statement whose
 * subject is the signed manifest, the verification material being the key's hint, no
 * transparency-log entry (offline). The bundle is built by @sigstore/sign; only the signer
 * is ours.
 *
 * Signatures are deterministic (RFC 6979, as @noble/curves signs): the same key and
 * statement give the same bundle bytes, so signing again what was signed adds nothing.
 */
import type { Signer } from '@sigstore/sign';
import { canonicalJson } from '../oci/blob.ts';
import { importPackage } from '../packages.ts';
import { INTOTO_MEDIA_TYPE, INTOTO_STATEMENT_TYPE } from './provenance.ts';
import type { SigningKey } from './keys.ts';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The predicate of a plain signature in cosign 3's bundle form. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/**
 * The signing libraries, loaded when something is signed: @sigstore/sign brings an HTTP
 * stack of its own (for Fulcio and Rekor) that an unsigned run should not parse at start.
 */
let signing: Promise<{ p256: typeof import('@noble/curves/nist.js').p256; bundleToJSON: typeof import('@sigstore/bundle').bundleToJSON; DSSEBundleBuilder: typeof import('@sigstore/sign').DSSEBundleBuilder }> | undefined;
function signingLibraries() {
  signing ??= Promise.all([importPackage<typeof import('@noble/curves/nist.js')>('@noble/curves/nist.js'), importPackage<typeof import('@sigstore/bundle')>('@sigstore/bundle'), importPackage<typeof import('@sigstore/sign')>('@sigstore/sign')])
    .then(([curves, bundle, sign]) => ({ p256: curves.p256, bundleToJSON: bundle.bundleToJSON, DSSEBundleBuilder: sign.DSSEBundleBuilder }));
  return signing;
}

function keySigner(key: SigningKey, p256: typeof import('@noble/curves/nist.js').p256): Signer {
  const d = Buffer.from(key.privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return {
    sign: async (data) => {
      const signature = Buffer.from(p256.sign(new Uint8Array(data), new Uint8Array(d), { format: 'der' }));
      // No hint here: @sigstore/bundle would also write it as the DSSE signature's keyid,
      // which cosign compares with a key id of its own and then skips the signature.
      return { signature, key: { $case: 'publicKey', publicKey: key.publicPem } };
    },
  };
}

export interface SignedBundle {
  /** The serialized bundle (the artifact layer). */
  readonly bytes: Uint8Array;
  /** The statement's predicate type, for the artifact manifest's annotations. */
  readonly predicateType: string;
}

/** Signs an in-toto statement (any predicate): what `cosign attest` stores. */
export async function signStatement(key: SigningKey, statement: Record<string, unknown>): Promise<SignedBundle> {
  const { p256, bundleToJSON, DSSEBundleBuilder } = await signingLibraries();
  const builder = new DSSEBundleBuilder({ signer: keySigner(key, p256), witnesses: [] });
  const bundle = await builder.create({ data: Buffer.from(canonicalJson(statement)), type: INTOTO_MEDIA_TYPE });
  // The hint cosign writes: it names the key without being the key.
  if (bundle.verificationMaterial.content.$case === 'publicKey') bundle.verificationMaterial.content.publicKey.hint = key.hint;
  return { bytes: new TextEncoder().encode(JSON.stringify(bundleToJSON(bundle))), predicateType: String(statement.predicateType) };
}

/** The statement `cosign sign` signs for a manifest digest. */
export function signatureStatement(digest: string): Record<string, unknown> {
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: [{ digest: { sha256: digest.replace(/^sha256:/, '') } }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  };
}

/** Signs a manifest digest: what `cosign sign` stores. */
export function signDigest(key: SigningKey, digest: string): Promise<SignedBundle> {
  return signStatement(key, signatureStatement(digest));
}
