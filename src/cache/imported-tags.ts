// Tag mappings written by `ocimirror import`. Each is written under the normalised Accept sets that real clients
// send (so their lookups are hits within cache.tagTtl, with no upstream attempt) and under "any" (which answers
// every other client once upstream has failed). `imported` keeps them servable until an upstream answers.
import { accepts, DEFAULT_MANIFEST_ACCEPT, MANIFEST_TYPES, normaliseAccept, SCHEMA1_TYPES } from '../oci/mediatypes.js';
import type { ManifestHead } from './manifest-store.js';
import type { TagMapping, TagRef, TagStore } from './tag-store.js';

const FOUR = [MANIFEST_TYPES.dockerV2, MANIFEST_TYPES.dockerList, MANIFEST_TYPES.ociManifest, MANIFEST_TYPES.ociIndex];

/** Accept sets as clients send them when resolving a tag, normalised. */
export const CLIENT_ACCEPTS: readonly string[] = [...new Set([
  // containerd (so K3s and `ctr`): the four types and */*.
  normaliseAccept([...FOUR, '*/*'].join(', ')),
  // containers/image (skopeo, podman, CRI-O): the four types and both schema 1 variants.
  normaliseAccept([...FOUR, ...SCHEMA1_TYPES].join(', ')),
  // No Accept at all, and Docker's daemon: the four types.
  normaliseAccept(DEFAULT_MANIFEST_ACCEPT),
])];

/** Records `ref` → manifest as imported at `now`, for every client kind whose Accept admits its media type. */
export async function setImportedTag(tags: TagStore, ref: TagRef, manifest: ManifestHead, now: number): Promise<void> {
  const mapping: TagMapping = { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size, checkedAt: now, imported: true };
  const fitting = CLIENT_ACCEPTS.filter((accept) => accepts(accept, manifest.mediaType));
  // The "any" mapping is written with each; a media type no client set admits still gets it through */*.
  for (const accept of fitting.length ? fitting : [CLIENT_ACCEPTS[0] as string]) await tags.set({ ...ref, accept }, mapping);
}
