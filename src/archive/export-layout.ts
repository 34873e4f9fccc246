// The metadata an exported archive carries: an OCI layout's index.json (with the annotations that ctr, K3s's
// agent/images and skopeo read names from), or docker save's manifest.json and repositories.
import { MANIFEST_TYPES } from '../oci/mediatypes.js';
import { blobPath } from './entry-names.js';

export interface LayoutImage {
  /** The full reference the image is exported under ("docker.io/library/alpine:3.19"). */
  name: string;
  digest: string;
  mediaType: string;
  size: number;
}

export const OCI_LAYOUT = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

/**
 * index.json: io.containerd.image.name restores the name in containerd (ctr import, K3s agent/images);
 * org.opencontainers.image.ref.name holds the same full reference (the image spec allows one), so
 * `skopeo copy oci-archive:FILE:docker.io/library/alpine:3.19` picks it even when several images share a tag.
 */
export function ociIndexJson(images: LayoutImage[]): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.ociIndex,
    manifests: images.map((i) => ({
      mediaType: i.mediaType, digest: i.digest, size: i.size,
      annotations: { 'io.containerd.image.name': i.name, 'org.opencontainers.image.ref.name': i.name },
    })),
  }));
}

export interface DockerImage {
  /**
   * Full reference, written whole: docker load reads "docker.io/library/alpine:3.19" as alpine:3.19, while podman
   * load would turn the short form Docker writes into localhost/alpine:3.19.
   */
  name?: string;
  config: string;
  layers: string[];
}

function splitTag(name: string): [string, string] | undefined {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') && !name.includes('@') ? [name.slice(0, colon), name.slice(colon + 1)] : undefined;
}

/** manifest.json: one item per image, its config and layers named by their members (blobs/sha256/<hex>). */
export function dockerManifestJson(images: DockerImage[]): Buffer {
  return Buffer.from(JSON.stringify(images.map((i) => ({
    Config: blobPath(i.config),
    RepoTags: i.name && splitTag(i.name) ? [i.name] : null,
    Layers: i.layers.map(blobPath),
  }))));
}

/** repositories (read by docker load before manifest.json existed): name → tag → the top layer's id. */
export function dockerRepositories(images: DockerImage[]): Buffer {
  const out: Record<string, Record<string, string>> = {};
  for (const i of images) {
    const split = i.name ? splitTag(i.name) : undefined;
    const top = i.layers.at(-1);
    if (!split || !top) continue;
    (out[split[0]] ??= {})[split[1]] = top.split(':')[1] as string;
  }
  return Buffer.from(JSON.stringify(out));
}
