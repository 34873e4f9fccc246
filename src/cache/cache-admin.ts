// `ocimirror cache list | rm | prune` at the level of the stores: which images (tags) are cached and what they
// hold, and removal that never takes a blob or manifest another cached image still refers to. Deletion goes
// through a Remover: the stores directly when no server runs, else the server's index, which defers deleting
// anything a client is reading until it is done.
import { isRegistryName } from '../config/registries.js';
import { isDigest, isName, isTag } from '../oci/names.js';
import { CLIENT_ACCEPTS } from './imported-tags.js';
import { imageTree, type ImageTree } from './manifest-tree.js';
import type { CacheStores } from './service.js';
import { tagId, type TagMapping, type TagRef } from './tag-store.js';

export interface CachedImage {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** Platforms whose manifests are cached. */
  platforms: string[];
  /** Bytes held: its cached manifests and blobs (a blob shared with another image counts in both). */
  size: number;
  blobs: number;
  /** Blobs its manifests name that are not cached (never pulled, or evicted). */
  missingBlobs: number;
  /** Last time a client pulled the tag (ms since epoch). */
  lastPulled: number;
  /** fresh: within cache.tagTtl; stale: to be revalidated upstream; imported: by `ocimirror import`, never confirmed upstream. */
  state: 'fresh' | 'stale' | 'imported';
}

/** An image to remove: a tag, or a digest (with the tags of that repository that point to it). */
export interface ImageTarget { registry: string; repo: string; reference: string }

export interface Remover {
  removeTag(ref: TagRef): Promise<void>;
  remove(kind: 'manifest' | 'blob', digest: string): Promise<'deleted' | 'deferred'>;
}

export interface RemovalReport {
  tags: string[];
  notFound: string[];
  manifests: number;
  blobs: number;
  bytes: number;
  /** Blobs of removed images kept because another cached image refers to them. */
  shared: number;
  /** Deleted once the clients reading them are done. */
  deferred: number;
}

interface Tagged { ref: TagRef; mapping: TagMapping; accessedAt: number; tree: ImageTree; digests: Set<string> }
interface Survey { tagged: Tagged[]; manifests: Map<string, { size: number; accessedAt: number }>; blobs: Map<string, { size: number; accessedAt: number }> }

export function isImageTarget(t: unknown): t is ImageTarget {
  const o = t as Partial<ImageTarget> | null;
  return typeof o?.registry === 'string' && isRegistryName(o.registry) && o.registry !== '*' && typeof o.repo === 'string' && isName(o.repo)
    && typeof o.reference === 'string' && (isTag(o.reference) || isDigest(o.reference));
}

export function storeRemover(stores: CacheStores): Remover {
  return {
    removeTag: (ref) => stores.tags.delete(ref),
    async remove(kind, digest) {
      await (kind === 'blob' ? stores.blobs.delete(digest) : stores.manifests.delete(digest));
      return 'deleted';
    },
  };
}

export class CacheAdmin {
  constructor(private readonly stores: CacheStores, private readonly remover: Remover, private readonly opts: { tagTtlMs: number; now: () => number }) {}

  async list(): Promise<CachedImage[]> {
    const s = await this.survey();
    return s.tagged.map((t) => {
      const present = [...t.tree.blobs.keys()].filter((d) => s.blobs.has(d));
      const size = [...t.tree.manifests.values()].reduce((a, b) => a + b, 0) + present.reduce((a, d) => a + (s.blobs.get(d)?.size ?? 0), 0);
      const state = t.mapping.imported ? 'imported' : this.opts.now() - t.mapping.checkedAt < this.opts.tagTtlMs ? 'fresh' : 'stale';
      return {
        registry: t.ref.registry, repository: t.ref.repo, tag: t.ref.tag, digest: t.mapping.digest, mediaType: t.mapping.mediaType,
        platforms: t.tree.platforms, size, blobs: present.length, missingBlobs: t.tree.blobs.size - present.length,
        lastPulled: lastPulled(t, s), state,
      } satisfies CachedImage;
    }).sort((a, b) => `${a.registry}/${a.repository}:${a.tag}`.localeCompare(`${b.registry}/${b.repository}:${b.tag}`));
  }

  /** Removes the images named, and every manifest and blob of theirs no other cached image refers to. */
  async remove(targets: ImageTarget[]): Promise<RemovalReport> {
    const s = await this.survey();
    const removed = new Set<Tagged>();
    const roots = new Set<string>();
    const notFound: string[] = [];
    for (const t of targets) {
      const byDigest = isDigest(t.reference);
      const hits = s.tagged.filter((x) => x.ref.registry === t.registry && x.ref.repo === t.repo && (byDigest ? x.digests.has(t.reference) : x.ref.tag === t.reference));
      for (const h of hits) removed.add(h);
      if (byDigest && s.manifests.has(t.reference)) roots.add(t.reference);
      if (hits.length === 0 && !(byDigest && s.manifests.has(t.reference))) notFound.push(`${t.registry}/${t.repo}${byDigest ? '@' : ':'}${t.reference}`);
    }
    const candidates = new Set<string>();
    for (const r of removed) for (const d of contentOf(r.tree)) candidates.add(d);
    for (const root of roots) for (const d of contentOf(await imageTree(root, this.stores.manifests, this.stores.blobs))) candidates.add(d);
    const report = await this.execute(s, removed, candidates);
    return { ...report, notFound };
  }

  /** Removes images no client pulled for `olderThanMs`, and any manifest or blob untouched that long that no remaining image refers to. */
  async prune(olderThanMs: number): Promise<RemovalReport> {
    const s = await this.survey();
    const cutoff = this.opts.now() - olderThanMs;
    const removed = new Set(s.tagged.filter((t) => lastPulled(t, s) < cutoff));
    const candidates = new Set<string>();
    for (const [d, e] of [...s.manifests, ...s.blobs]) if (e.accessedAt < cutoff) candidates.add(d);
    return { ...(await this.execute(s, removed, candidates)), notFound: [] };
  }

  /** Tags first (nothing then points at what goes next), then manifests, then blobs; anything a kept image needs stays. */
  private async execute(s: Survey, removed: Set<Tagged>, candidates: Set<string>): Promise<Omit<RemovalReport, 'notFound'>> {
    const keep = new Set<string>();
    for (const t of s.tagged) if (!removed.has(t)) for (const d of contentOf(t.tree)) keep.add(d);
    const report = { tags: [] as string[], manifests: 0, blobs: 0, bytes: 0, shared: 0, deferred: 0 };
    for (const t of removed) { await this.remover.removeTag(t.ref); report.tags.push(tagId(t.ref)); }
    for (const kind of ['manifest', 'blob'] as const) {
      const present = kind === 'manifest' ? s.manifests : s.blobs;
      for (const d of candidates) {
        const entry = present.get(d);
        if (!entry) continue;
        if (keep.has(d)) { if (kind === 'blob') report.shared++; continue; }
        if ((await this.remover.remove(kind, d)) === 'deferred') report.deferred++;
        report[kind === 'manifest' ? 'manifests' : 'blobs']++;
        report.bytes += entry.size;
      }
    }
    return report;
  }

  private async survey(): Promise<Survey> {
    const { manifests, blobs, tags } = this.stores;
    const s: Survey = { tagged: [], manifests: new Map(), blobs: new Map() };
    for await (const m of manifests.list()) s.manifests.set(m.id, { size: m.size, accessedAt: m.accessedAt });
    for await (const b of blobs.list()) s.blobs.set(b.digest, { size: b.size, accessedAt: b.accessedAt });
    for await (const t of tags.list()) {
      // A tag may map to other digests under other clients' Accept sets: all of them belong to it.
      const digests = new Set([t.mapping.digest]);
      for (const accept of CLIENT_ACCEPTS) { const m = await tags.get({ ...t.ref, accept }); if (m) digests.add(m.digest); }
      const tree: ImageTree = { manifests: new Map(), blobs: new Map(), platforms: [] };
      for (const d of digests) {
        const sub = await imageTree(d, manifests, blobs);
        for (const [k, v] of sub.manifests) tree.manifests.set(k, v);
        for (const [k, v] of sub.blobs) tree.blobs.set(k, v);
        if (d === t.mapping.digest) tree.platforms = sub.platforms;
      }
      s.tagged.push({ ref: t.ref, mapping: t.mapping, accessedAt: t.entry.accessedAt, tree, digests });
    }
    return s;
  }
}

function contentOf(tree: ImageTree): string[] {
  return [...tree.manifests.keys(), ...tree.blobs.keys()];
}

/** A tag's mapping file is rewritten when revalidated; its manifest's access time moves on every pull. */
function lastPulled(t: Tagged, s: Survey): number {
  return Math.max(t.accessedAt, s.manifests.get(t.mapping.digest)?.accessedAt ?? 0);
}
