/**
 * The OCI documents pause-build writes and copies, and the in-memory form of a built
 * image set. Everything is addressed by digest; bytes are kept exactly as written so
 * that a digest always matches what is pushed or stored.
 */

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface OciPlatform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  /** Windows entries: the full build, e.g. 10.0.20348.2700. */
  readonly 'os.version'?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  /** `sha256:<64 hex>` */
  readonly digest: string;
  readonly size: number;
  readonly platform?: OciPlatform;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Content and the descriptor that addresses it. */
export interface Blob {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
}

/** One arch's image: manifest → config + layers. */
export interface BuiltImage {
  /** pause-build arch name (amd64, arm, …). */
  readonly arch: string;
  readonly manifest: Blob;
  readonly config: Blob;
  readonly layers: readonly Blob[];
  /**
   * Layers of a base image that stay in the base's repository (Windows images): copied or
   * mounted when published, never held here. Foreign layers are not listed: nobody uploads them.
   */
  readonly baseBlobs?: readonly BaseBlob[];
}

export interface BaseBlob {
  readonly descriptor: Descriptor;
  /** Where the base is, so a push to the same registry can mount instead of copy. */
  readonly from: { readonly registry: string; readonly repository: string };
  readonly open: () => Promise<Uint8Array | ReadableStream<Uint8Array>>;
}

/** The multi-arch result: an index whose manifests are `images`, in the same order. */
export interface BuiltIndex {
  readonly index: Blob;
  readonly images: readonly BuiltImage[];
}
