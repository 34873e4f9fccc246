export const MANIFEST_TYPES = {
  dockerV2: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

/** What we ask for when a client sent no Accept (Docker Hub would otherwise answer with schema 1). */
export const DEFAULT_MANIFEST_ACCEPT = [
  MANIFEST_TYPES.dockerV2, MANIFEST_TYPES.dockerList, MANIFEST_TYPES.ociManifest, MANIFEST_TYPES.ociIndex,
].join(', ');

/** containerd refuses manifests larger than this; so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The media type a manifest declares about itself, if it is JSON with a mediaType field. */
export function declaredMediaType(body: Buffer): string | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as { mediaType?: unknown };
    return typeof v.mediaType === 'string' ? v.mediaType : undefined;
  } catch {
    return undefined;
  }
}
