/**
 * The SBOM of one platform image, SPDX 2.3 JSON (the format Kubernetes publishes for its
 * releases). A scanner finds nothing in a static pause binary: the C library is compiled
 * in. So the document says what only the build knows: the pause binary and its source,
 * the libc linked into it and the compiler that built it, read from the toolchain.
 *
 * Pure and deterministic: the date is SOURCE_DATE_EPOCH and the namespace is derived from
 * the image digest, so the same inputs give the same bytes.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../oci/blob.ts';
import { rfc3339 } from '../oci/image.ts';
import type { ToolchainComponents } from '../toolchain/components.ts';

export const SPDX_MEDIA_TYPE = 'application/spdx+json';
export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document';

export interface SbomInput {
  /** The pause version tag, e.g. 3.10. */
  readonly version: string;
  /** `linux/arm64/v8`. */
  readonly platform: string;
  readonly arch: string;
  /** The image manifest's digest: what the SBOM describes. */
  readonly imageDigest: string;
  /** Repository the image is named after, e.g. registry.k8s.io/pause; a plain name in a layout. */
  readonly imageName: string;
  /** sha256 hex of pause.c and of the built, stripped binary. */
  readonly sourceSha256: string;
  readonly sourceSha1: string;
  readonly sourceFile: string;
  readonly binarySha256: string;
  readonly binarySha1: string;
  /** Path of the binary inside the image, e.g. /pause. */
  readonly binaryPath: string;
  readonly components: ToolchainComponents;
  /** SOURCE_DATE_EPOCH. */
  readonly epoch: number;
  /** The source repository URL. */
  readonly sourceUrl: string;
  readonly revision: string;
  /** pause-build's own version. */
  readonly toolVersion: string;
}

export interface SpdxPackage {
  readonly SPDXID: string;
  readonly name: string;
  readonly versionInfo?: string;
  readonly [field: string]: unknown;
}

export interface SpdxDocument {
  readonly spdxVersion: 'SPDX-2.3';
  readonly SPDXID: 'SPDXRef-DOCUMENT';
  readonly name: string;
  readonly documentNamespace: string;
  readonly packages: readonly SpdxPackage[];
  readonly [field: string]: unknown;
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');

function debPurl(name: string, version: string): string {
  return `pkg:deb/debian/${name}@${encodeURIComponent(version)}`;
}

export function buildSbom(input: SbomInput): SpdxDocument {
  const { components: c } = input;
  const imageHex = hex(input.imageDigest);
  // The namespace is unique per image digest and per what went into it: a rebuilt image
  // with another libc gets another namespace even before its digest is known to differ.
  const nsHash = createHash('sha256').update(canonicalJson({ image: input.imageDigest, binary: input.binarySha256, libc: c.libc, compiler: c.compilerVersion })).digest('hex').slice(0, 32);
  const namespace = `https://spdx.org/spdxdocs/pause-${input.version}-${input.arch}-${imageHex.slice(0, 16)}-${nsHash}`;
  const ids = {
    image: 'SPDXRef-Image',
    pause: 'SPDXRef-Package-pause',
    source: 'SPDXRef-File-source',
    binary: 'SPDXRef-File-binary',
    libc: 'SPDXRef-Package-libc',
    compiler: 'SPDXRef-Package-compiler',
  };
  const packages: SpdxPackage[] = [
    {
      SPDXID: ids.image,
      name: input.imageName,
      versionInfo: input.version,
      primaryPackagePurpose: 'CONTAINER',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: imageHex }],
      licenseConcluded: 'Apache-2.0',
      licenseDeclared: 'Apache-2.0',
      copyrightText: 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:oci/pause@sha256%3A${imageHex}?arch=${encodeURIComponent(input.arch)}&tag=${encodeURIComponent(input.version)}` }],
      comment: `platform ${input.platform}`,
    },
    {
      SPDXID: ids.pause,
      name: 'pause',
      versionInfo: input.version,
      primaryPackagePurpose: 'APPLICATION',
      supplier: 'Organization: Kubernetes',
      downloadLocation: `git+${input.sourceUrl}@${input.revision}`,
      homepage: input.sourceUrl,
      filesAnalyzed: true,
      hasFiles: [ids.source, ids.binary],
      packageVerificationCode: { packageVerificationCodeValue: verificationCode([input.sourceSha1, input.binarySha1]) },
      checksums: [{ algorithm: 'SHA256', checksumValue: input.binarySha256 }],
      licenseConcluded: 'Apache-2.0',
      licenseDeclared: 'Apache-2.0',
      licenseInfoFromFiles: ['Apache-2.0'],
      copyrightText: 'Copyright The Kubernetes Authors.',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:generic/pause@${encodeURIComponent(input.version)}?arch=${encodeURIComponent(input.arch)}` }],
    },
    {
      SPDXID: ids.libc,
      name: c.libc.name,
      versionInfo: c.libc.version,
      primaryPackagePurpose: 'LIBRARY',
      supplier: 'Organization: Debian',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'LGPL-2.1-or-later',
      copyrightText: 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: debPurl(c.libc.name, c.libc.version) }],
      comment: 'the GNU C library, statically linked into pause',
    },
    {
      SPDXID: ids.compiler,
      name: c.compilerPackage.name,
      versionInfo: c.compilerPackage.version,
      primaryPackagePurpose: 'APPLICATION',
      supplier: 'Organization: Debian',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'GPL-3.0-or-later',
      copyrightText: 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: debPurl(c.compilerPackage.name, c.compilerPackage.version) }],
      comment: `${c.compiler} ${c.compilerVersion}`,
    },
  ];
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `pause-${input.version}-${input.platform.replaceAll('/', '-')}`,
    documentNamespace: namespace,
    creationInfo: { created: rfc3339(input.epoch), creators: [`Tool: pause-build-${input.toolVersion}`] },
    documentDescribes: [ids.image],
    packages,
    files: [
      {
        SPDXID: ids.source,
        fileName: `./${input.sourceFile}`,
        fileTypes: ['SOURCE'],
        checksums: [
          { algorithm: 'SHA1', checksumValue: input.sourceSha1 },
          { algorithm: 'SHA256', checksumValue: input.sourceSha256 },
        ],
        licenseConcluded: 'Apache-2.0',
        licenseInfoInFiles: ['Apache-2.0'],
        copyrightText: 'Copyright The Kubernetes Authors.',
      },
      {
        SPDXID: ids.binary,
        fileName: `.${input.binaryPath}`,
        fileTypes: ['BINARY'],
        checksums: [
          { algorithm: 'SHA1', checksumValue: input.binarySha1 },
          { algorithm: 'SHA256', checksumValue: input.binarySha256 },
        ],
        licenseConcluded: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
      },
    ],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: ids.image },
      { spdxElementId: ids.image, relationshipType: 'CONTAINS', relatedSpdxElement: ids.pause },
      { spdxElementId: ids.pause, relationshipType: 'CONTAINS', relatedSpdxElement: ids.binary },
      { spdxElementId: ids.binary, relationshipType: 'GENERATED_FROM', relatedSpdxElement: ids.source },
      { spdxElementId: ids.binary, relationshipType: 'STATIC_LINK', relatedSpdxElement: ids.libc },
      { spdxElementId: ids.compiler, relationshipType: 'BUILD_TOOL_OF', relatedSpdxElement: ids.binary },
    ],
  };
}

/** SPDX 2.3 §7.9: sha1 of the sorted, concatenated sha1s of the package's files. */
function verificationCode(sha1s: readonly string[]): string {
  return createHash('sha1').update([...sha1s].sort().join('')).digest('hex');
}

/** The document's bytes: canonical JSON, so the same inputs give the same bytes. */
export function sbomBytes(doc: SpdxDocument): Uint8Array {
  return new TextEncoder().encode(canonicalJson(doc));
}

/** Name, version and purpose of each package, for the CLI's summary. */
export function sbomPackageList(doc: SpdxDocument): string[] {
  return doc.packages.map((p) => `${p.name} ${p.versionInfo ?? ''} (${String(p.primaryPackagePurpose ?? 'OTHER')})`.replace('  ', ' '));
}
