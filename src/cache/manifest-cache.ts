// Manifests: by digest cached forever (immutable, verified); by tag cached for cache.tagTtl, then revalidated
// with HEAD — an unchanged tag never costs a GET (Docker Hub counts GETs). When every endpoint is down, the
// last known manifest for the tag is served with a Warning header.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { isDigest } from '../oci/names.js';
import type { ManifestRequest, ManifestResult } from '../oci/service.js';
import { isOutage, type ProxyService } from '../upstream/service.js';
import type { BlobStore } from './blob-store.js';
import type { CacheIndex } from './index.js';
import type { CacheStats } from './stats.js';
import { TagStore, type TagKey, type TagMapping } from './tag-store.js';

const STALE_WARNING = '110 ocimirror "Response is Stale: every upstream endpoint failed"';

export class ManifestCache {
  private readonly tags: TagStore;
  private readonly inflight = new Map<string, Promise<ManifestResult>>();
  private readonly staleWarned = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly store: BlobStore,
    private readonly index: CacheIndex,
    private readonly upstream: ProxyService,
    private readonly stats: CacheStats,
    private readonly log: Logger,
    private readonly tagTtlMs: number,
  ) {
    this.tags = new TagStore(dir);
  }

  async manifest(req: ManifestRequest): Promise<ManifestResult> {
    return isDigest(req.ref) ? this.byDigest(req, req.ref) : this.byTag(req);
  }

  private async byDigest(req: ManifestRequest, digest: string): Promise<ManifestResult> {
    const cached = await this.cached(digest);
    if (cached) {
      this.stats.hits.manifest++;
      return { ...cached, endpoint: 'cache', cache: 'hit', ...(req.method === 'HEAD' ? { body: undefined } : {}) };
    }
    this.stats.misses.manifest++;
    if (req.method === 'HEAD') return { ...(await this.upstream.manifest({ ...req, ref: digest })), cache: 'miss' };
    const result = await this.once(`d:${req.registry}/${req.repo}@${digest}`, () => this.upstream.manifest({ ...req, ref: digest, method: 'GET' }));
    await this.save(result);
    return { ...result, cache: 'miss' };
  }

  private async byTag(req: ManifestRequest): Promise<ManifestResult> {
    const key: TagKey = { registry: req.registry, repo: req.repo, tag: req.ref, accept: req.accept };
    const mapping = await this.tags.get(key);
    if (mapping && Date.now() - mapping.checkedAt < this.tagTtlMs) {
      const hit = await this.fromMapping(req, mapping);
      if (hit) { this.stats.hits.manifest++; return { ...hit, cache: 'hit' }; }
    }
    try {
      return await this.once(`t:${req.method}:${JSON.stringify(key)}`, () => this.revalidate(req, key, mapping));
    } catch (err) {
      if (!isOutage(err)) throw err;
      const last = mapping ?? (await this.tags.getAny(key));
      if (!last || !accepts(req.accept, last.mediaType)) throw err;
      const stale = await this.fromMapping(req, last);
      if (!stale) throw err;
      const id = `${req.registry}/${req.repo}:${req.ref}`;
      if (!this.staleWarned.has(id)) {
        this.staleWarned.add(id);
        this.log.warn({ registry: req.registry, repo: req.repo, tag: req.ref, digest: last.digest }, 'every upstream failed; serving the last known manifest for this tag');
      }
      this.stats.staleServed++;
      return { ...stale, warning: STALE_WARNING, cache: 'stale' };
    }
  }

  /** Past the TTL (or never seen): HEAD upstream; reuse what we have when the digest is unchanged. */
  private async revalidate(req: ManifestRequest, key: TagKey, mapping: TagMapping | undefined): Promise<ManifestResult> {
    this.stats.misses.manifest++;
    if (mapping || req.method === 'HEAD') {
      const head = await this.upstream.manifest({ ...req, method: 'HEAD' });
      await this.tags.set(key, { digest: head.digest, mediaType: head.mediaType, size: head.size, checkedAt: Date.now() });
      this.staleWarned.delete(`${req.registry}/${req.repo}:${req.ref}`);
      if (req.method === 'HEAD') return { ...head, cache: 'miss' };
      const cached = await this.cached(head.digest);
      if (cached) return { ...cached, endpoint: head.endpoint, attempts: head.attempts, cache: 'hit' };
      return this.byDigest({ ...req, ref: head.digest }, head.digest);
    }
    const result = await this.upstream.manifest(req);
    await this.save(result);
    await this.tags.set(key, { digest: result.digest, mediaType: result.mediaType, size: result.size, checkedAt: Date.now() });
    return { ...result, cache: 'miss' };
  }

  private async fromMapping(req: ManifestRequest, m: TagMapping): Promise<ManifestResult | undefined> {
    if (req.method === 'HEAD') return { digest: m.digest, mediaType: m.mediaType, size: m.size, endpoint: 'cache' };
    const cached = await this.cached(m.digest);
    return cached ? { ...cached, endpoint: 'cache' } : undefined;
  }

  private async cached(digest: string): Promise<ManifestResult | undefined> {
    if (!this.index.has(digest)) return undefined;
    const [body, meta] = await Promise.all([this.store.readAll(digest), this.readMeta(digest)]);
    if (!body || !meta) return undefined;
    this.index.use(digest);
    return { digest, mediaType: meta.mediaType, size: body.length, body };
  }

  private async save(result: ManifestResult): Promise<void> {
    if (!result.body) return;
    await this.writeMeta(result.digest, { mediaType: result.mediaType });
    const stored = await this.store.put(result.digest, result.body);
    this.index.add(result.digest, stored.size);
  }

  /** One upstream request however many clients ask for the same manifest at once. */
  private once(key: string, fn: () => Promise<ManifestResult>): Promise<ManifestResult> {
    let p = this.inflight.get(key);
    if (!p) {
      p = fn().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private metaPath(digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string];
    return join(this.dir, 'manifests', alg, hex.slice(0, 2), `${hex}.json`);
  }

  private async readMeta(digest: string): Promise<{ mediaType: string } | undefined> {
    try { return JSON.parse(await readFile(this.metaPath(digest), 'utf8')) as { mediaType: string }; } catch { return undefined; }
  }

  private async writeMeta(digest: string, meta: { mediaType: string }): Promise<void> {
    const file = this.metaPath(digest);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify(meta));
    await rename(tmp, file);
  }
}

/** Whether a client's Accept header admits a media type (no Accept, or a wildcard, admits anything). */
export function accepts(accept: string, mediaType: string): boolean {
  const types = accept.split(',').map((t) => t.split(';')[0]?.trim().toLowerCase()).filter(Boolean);
  return types.length === 0 || types.includes('*/*') || types.includes(mediaType.toLowerCase());
}
