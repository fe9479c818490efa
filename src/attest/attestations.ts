/**
 * Every artifact that goes with a built index: per platform image an SPDX SBOM and an SLSA
 * provenance statement, for the index a provenance statement; with a signing key also a
 * cosign-style signature of the index and a signed (DSSE) form of each attestation, which
 * is what `cosign verify` and `cosign verify-attestation` look for.
 *
 * The image's own bytes are not touched: artifacts point at it through `subject`.
 */
import { rfc3339 } from '../oci/image.ts';
import { blobOf } from '../oci/blob.ts';
import { type Artifact, buildArtifact } from '../oci/referrers.ts';
import type { BuiltIndex, Descriptor } from '../oci/types.ts';
import type { ToolchainComponents } from '../toolchain/components.ts';
import type { SigningKey } from './keys.ts';
import { INTOTO_MEDIA_TYPE, INTOTO_STATEMENT_TYPE, type ProvenanceInput, buildProvenance, statementBytes } from './provenance.ts';
import { SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE, buildSbom, sbomBytes, sbomPackageList } from './sbom.ts';
import { BUNDLE_MEDIA_TYPE, type SignedBundle, signDigest, signStatement } from './sign.ts';

export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

export interface ImageFacts {
  readonly arch: string;
  readonly platform: string;
  readonly binarySha256: string;
  readonly binarySha1: string;
  readonly components: ToolchainComponents;
}

export interface AttestationInput {
  readonly built: BuiltIndex;
  readonly images: ReadonlyMap<string, ImageFacts>;
  readonly source: { readonly file: string; readonly path: string; readonly sha256: string; readonly sha1: string };
  /** Everything of the provenance but its subjects. */
  readonly provenance: Omit<ProvenanceInput, 'subjects'>;
  readonly binaryPath: string;
  readonly key?: SigningKey;
  /** false: no SBOM or provenance, only the index's signature (with a key). */
  readonly documents?: boolean;
}

export interface AttestationSet {
  /** In push order: each artifact's subject exists before it (the image is pushed first). */
  readonly artifacts: readonly Artifact[];
  /** What each image's SBOM lists, for the summary. */
  readonly packages: ReadonlyMap<string, readonly string[]>;
}

function bundleArtifact(subject: Descriptor, bundle: SignedBundle, epoch: number): Artifact {
  return buildArtifact({
    subject,
    artifactType: BUNDLE_MEDIA_TYPE,
    layer: blobOf(bundle.bytes, { mediaType: BUNDLE_MEDIA_TYPE }),
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': bundle.predicateType,
      'org.opencontainers.image.created': rfc3339(epoch),
    },
    artifactTypeInConfig: true,
  });
}

export async function buildAttestations(input: AttestationInput): Promise<AttestationSet> {
  const { built, key } = input;
  const epoch = input.provenance.epoch;
  const artifacts: Artifact[] = [];
  const packages = new Map<string, string[]>();

  const attach = async (subject: Descriptor, mediaType: string, predicateType: string, bytes: Uint8Array, statement: Record<string, unknown>) => {
    artifacts.push(buildArtifact({ subject, artifactType: mediaType, layer: blobOf(bytes, { mediaType }), annotations: { [PREDICATE_TYPE_ANNOTATION]: predicateType, 'org.opencontainers.image.created': rfc3339(epoch) } }));
    if (key) artifacts.push(bundleArtifact(subject, await signStatement(key, statement), epoch));
  };

  for (const image of built.images) {
    const facts = input.images.get(image.arch);
    if (!facts) continue;
    const subject = image.manifest.descriptor;
    const sbom = buildSbom({
      version: input.provenance.version,
      platform: facts.platform,
      arch: image.arch,
      imageDigest: subject.digest,
      imageName: 'pause',
      sourceFile: input.source.file,
      sourceSha256: input.source.sha256,
      sourceSha1: input.source.sha1,
      binaryPath: input.binaryPath,
      binarySha256: facts.binarySha256,
      binarySha1: facts.binarySha1,
      components: facts.components,
      epoch,
      sourceUrl: input.provenance.sourceUrl,
      revision: input.provenance.revision,
      toolVersion: input.provenance.toolVersion,
    });
    packages.set(image.arch, sbomPackageList(sbom));
    const subjects = [{ name: 'pause', digest: subject.digest }];
    const sbomStatement = { _type: INTOTO_STATEMENT_TYPE, subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.slice(7) } })), predicateType: SPDX_PREDICATE_TYPE, predicate: sbom };
    await attach(subject, SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE, sbomBytes(sbom), sbomStatement);
    const prov = buildProvenance({ ...input.provenance, arches: [image.arch], subjects });
    await attach(subject, INTOTO_MEDIA_TYPE, String(prov.predicateType), statementBytes(prov), prov);
  }

  const indexSubject = built.index.descriptor;
  const indexProv = buildProvenance({ ...input.provenance, subjects: [{ name: 'pause', digest: indexSubject.digest }] });
  if (input.documents !== false) await attach(indexSubject, INTOTO_MEDIA_TYPE, String(indexProv.predicateType), statementBytes(indexProv), indexProv);
  if (key) artifacts.push(bundleArtifact(indexSubject, await signDigest(key, indexSubject.digest), epoch));
  return { artifacts, packages };
}
