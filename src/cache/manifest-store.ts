// Manifests are their own kind in the cache, apart from blobs: a manifest lookup never opens a blob (a client
// asking for a 1 GiB layer's digest under /manifests/ must not make ocimirror read 1 GiB into memory). Every store
// caps what it reads at MAX_MANIFEST_BYTES before reading, and keeps the media type the verified manifest was
// served with. Implementations run the contract suite in test/contract/.
import { algorithmOf, digestOf } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/mediatypes.js';
import { DigestMismatchError } from './blob-store.js';
import type { IndexedEntry } from './lru-index.js';

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface StoredManifest extends ManifestHead {
  body: Buffer;
}

export interface ManifestStore {
  /** Digest, media type and size, without reading the body. */
  head(digest: string): Promise<ManifestHead | undefined>;
  /** The manifest whole, or undefined; never reads more than MAX_MANIFEST_BYTES. */
  get(digest: string): Promise<StoredManifest | undefined>;
  /** Stores a manifest after checking its digest and size; atomic (visible whole or not at all) and durable. */
  put(digest: string, mediaType: string, body: Buffer): Promise<ManifestHead>;
  delete(digest: string): Promise<void>;
  touch(digest: string, at?: Date): Promise<void>;
  /** Every stored manifest, for rebuilding the index at start-up. */
  list(): AsyncIterable<IndexedEntry>;
}

/** A media type as RFC 6838 spells one (no parameters, no whitespace): nothing else is stored. */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isMediaType(text: string): boolean {
  return MEDIA_TYPE_RE.test(text);
}

/** What every store checks before it stores a manifest: a plain media type, the size cap, the digest. */
export function checkManifest(digest: string, mediaType: string, body: Buffer): void {
    if (!isMediaType(mediaType)) throw new Error(`refusing to store a manifest with media type ${JSON.stringify(mediaType)}`);
    if (body.length > MAX_MANIFEST_BYTES) throw new Error(`refusing to store a manifest of ${body.length} bytes`);
    const actual = digestOf(body, algorithmOf(digest));
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
}
