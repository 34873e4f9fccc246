// Tag → manifest mappings, kept so a restarted ocimirror can still answer for a tag while every upstream is down.
// Keyed by registry, repository, tag and the client's Accept set, normalised to the known manifest media types
// (Docker Hub answers a tag differently depending on Accept; junk variants must not multiply entries).
import { isRegistryName } from '../config/registries.js';
import { isDigest, isName, isTag } from '../oci/names.js';
import type { IndexedEntry } from './lru-index.js';

export interface TagMapping {
  digest: string;
  mediaType: string;
  size: number;
  /** When upstream last confirmed this mapping (ms since epoch). */
  checkedAt: number;
  /**
   * Brought in by `ocimirror import`, never confirmed upstream: served whenever no upstream answers for the tag
   * (every endpoint fails, or none knows it), however old — neither staleIfError nor staleIfNotFound bounds it —
   * until an upstream answer replaces it.
   */
  imported?: true;
}

/** A tag of a repository at a registry. */
export interface TagRef { registry: string; repo: string; tag: string }

/** `accept` is the normalised Accept (normaliseAccept in src/oci/mediatypes.ts). */
export interface TagKey extends TagRef { accept: string }

export interface TagStore {
  get(key: TagKey): Promise<TagMapping | undefined>;
  /** The last mapping seen for the tag under any Accept set (for serving offline to another kind of client). */
  getAny(ref: TagRef): Promise<TagMapping | undefined>;
  /** Records a mapping (and it as the tag's latest under any Accept); returns the bytes the tag now takes. */
  set(key: TagKey, mapping: TagMapping): Promise<number>;
  /** Forgets the tag under every Accept set. */
  delete(ref: TagRef): Promise<void>;
  /** Every tag with its latest mapping, for `cache list` and for rebuilding the index. */
  list(): AsyncIterable<{ ref: TagRef; mapping: TagMapping; entry: IndexedEntry }>;
}

/** A tag ocimirror may keep: a registry host (never "*"), a repository name and a tag, each by its grammar. */
export function isTagRef(ref: TagRef): boolean {
  return isRegistryName(ref.registry) && ref.registry !== '*' && isName(ref.repo) && isTag(ref.tag);
}

/**
 * Where a tag's mappings live, relative to a store's root ("tags/<registry, URI-encoded>/<repo>/_tags/<tag>"): the
 * same layout on every store, built only from validated grammar.
 */
export function tagPath(ref: TagRef): string {
  if (!isTagRef(ref)) throw new Error('refusing an unvalidated tag key');
  return `tags/${encodeURIComponent(ref.registry)}/${ref.repo}/_tags/${ref.tag}`;
}

/** The cache index names a tag entry "registry/repo:tag" (a registry has no "/", a tag no ":"). */
export function tagId(ref: TagRef): string {
  return `${ref.registry}/${ref.repo}:${ref.tag}`;
}

export function parseTagId(id: string): TagRef | undefined {
  const slash = id.indexOf('/');
  const colon = id.lastIndexOf(':');
  if (slash <= 0 || colon < slash) return undefined;
  return { registry: id.slice(0, slash), repo: id.slice(slash + 1, colon), tag: id.slice(colon + 1) };
}

/** A stored mapping as JSON, or undefined when it is not one ocimirror wrote. */
export function parseMapping(text: string): TagMapping | undefined {
  try {
    const m = JSON.parse(text) as Partial<TagMapping>;
    if (typeof m.digest === 'string' && isDigest(m.digest) && typeof m.mediaType === 'string' && typeof m.size === 'number' && typeof m.checkedAt === 'number') {
      return { digest: m.digest, mediaType: m.mediaType, size: m.size, checkedAt: m.checkedAt, ...(m.imported === true ? { imported: true as const } : {}) };
    }
  } catch { /* reported by the caller as damaged */ }
  return undefined;
}
