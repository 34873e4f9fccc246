// Manifests: by digest cached forever (immutable, verified); by tag cached for the policy's tagTtl (never
// revalidated when the tag matches immutableTags), then revalidated with HEAD — an unchanged tag never costs a GET
// (Docker Hub counts GETs). When upstream fails, says the tag is gone, or its rate limit is nearly used up, the last
// known manifest is served within the policy's window with a Warning (stale-tags.ts); a missing tag is remembered
// for negativeTtl. A cache that cannot be written to never fails a request that upstream answered.
import type { Logger } from 'pino';
import type { EffectivePolicy, Policies } from '../config/policies.js';
import { OciError } from '../oci/errors.js';
import { accepts } from '../oci/mediatypes.js';
import { isDigest } from '../oci/names.js';
import type { ManifestRequest as RoutedManifestRequest, ManifestResult } from '../oci/service.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import { isNotFound, isOutage, isRateLimited, type ProxyService } from '../upstream/service.js';
import type { EntryIndex } from './lru-index.js';
import type { ManifestStore } from './manifest-store.js';
import { SharedRequests } from './shared-request.js';
import { StaleTags } from './stale-tags.js';
import type { CacheStats, StaleReason } from './stats.js';
import { tagId, type TagKey, type TagMapping, type TagStore } from './tag-store.js';

type ManifestRequest = RoutedManifestRequest<MirrorUpstream>;

export interface ManifestCacheDeps {
  manifests: ManifestStore;
  tags: TagStore;
  index: EntryIndex;
  upstream: ProxyService;
  stats: CacheStats;
  log: Logger;
  /** Per-repository tagTtl, immutableTags, stale windows and negativeTtl. */
  policies: Policies;
  /** The clock tag freshness is judged by (tests move it instead of sleeping). */
  now: () => number;
}

export class ManifestCache {
  private readonly shared = new SharedRequests<ManifestResult>();
  private readonly stale: StaleTags;
  private readonly storageWarned = new Set<string>();

  constructor(private readonly d: ManifestCacheDeps) {
    this.stale = new StaleTags(d);
  }

  /** Clients waiting for a manifest request upstream (several may share one). */
  get waiting(): number {
    return this.shared.waiting;
  }

  async manifest(req: ManifestRequest): Promise<ManifestResult> {
    return isDigest(req.ref) ? this.byDigest(req, req.ref) : this.byTag(req);
  }

  private async byDigest(req: ManifestRequest, digest: string): Promise<ManifestResult> {
    const cached = await this.cached(digest, req.method);
    if (cached) {
      this.d.stats.hits.manifest++;
      return { ...cached, endpoint: 'cache', cache: 'hit' };
    }
    this.d.stats.misses.manifest++;
    if (req.method === 'HEAD') return { ...(await this.d.upstream.manifest({ ...req, ref: digest })), cache: 'miss' };
    const result = await this.shared.run(`d ${req.registry}/${req.repo}@${digest}`, async (signal) => {
      const r = await this.d.upstream.manifest({ ...req, ref: digest, method: 'GET', signal });
      await this.save(r);
      return r;
    }, req.signal);
    return { ...result, cache: 'miss' };
  }

  private async byTag(req: ManifestRequest): Promise<ManifestResult> {
    const key: TagKey = { registry: req.registry, repo: req.repo, tag: req.ref, accept: req.accept };
    const id = tagId(key);
    const policy = this.d.policies.policyFor(req.registry, req.repo);
    const mapping = await this.d.tags.get(key);
    if (mapping && (policy.isImmutable(req.ref) || this.d.now() - mapping.checkedAt < policy.tagTtlMs)) {
      const hit = await this.fromMapping(req, mapping);
      if (hit) { this.d.stats.hits.manifest++; return { ...hit, cache: 'hit' }; }
    }
    const missingSince = this.stale.knownMissing(id, policy);
    if (missingSince !== undefined) {
      this.d.stats.negativeHits++;
      const err = new OciError('MANIFEST_UNKNOWN', { registry: req.registry, repository: req.repo, tag: req.ref },
        { message: `manifest unknown: upstream said ${req.ref} does not exist ${Math.round((this.d.now() - missingSince) / 1000)}s ago (negativeTtl)` });
      return this.fallBack(req, key, mapping, policy, 'notfound', err);
    }
    // Past its TTL, but the endpoint's rate limit is nearly used up (or all wait for a Retry-After): keep it.
    if (mapping && req.mirror.rateLimitHold()) {
      const held = await this.fromMapping(req, mapping);
      if (held) return { ...held, warning: this.stale.warning(id, mapping, 'ratelimit', {}), cache: 'stale' };
    }
    try {
      const result = await this.shared.run(`t ${req.method} ${JSON.stringify(key)}`, (signal) => this.revalidate({ ...req, signal }, key, mapping), req.signal);
      this.stale.confirmed(id);
      return result;
    } catch (err) {
      if (isOutage(err)) return this.fallBack(req, key, mapping, policy, isRateLimited(err) ? 'ratelimit' : 'error', err);
      if (!isNotFound(err)) throw err;
      this.stale.rememberMissing(id, policy);
      return this.fallBack(req, key, mapping, policy, 'notfound', err);
    }
  }

  /** The last known mapping instead of upstream's answer, within the policy's window; else upstream's error. */
  private async fallBack(req: ManifestRequest, key: TagKey, mapping: TagMapping | undefined, policy: EffectivePolicy, reason: StaleReason, err: unknown): Promise<ManifestResult> {
    const last = mapping ?? (await this.d.tags.getAny(key));
    if (!last || !accepts(req.accept, last.mediaType) || !this.stale.allows(last, reason === 'notfound' ? 'notfound' : 'error', policy)) throw err;
    const stale = await this.fromMapping(req, last);
    if (!stale) throw err;
    const warning = this.stale.warning(tagId(key), last, reason, { registry: req.registry, repo: req.repo, tag: req.ref });
    return { ...stale, warning, cache: 'stale' };
  }

  /** Past the TTL (or never seen): HEAD upstream; reuse what we have when the digest is unchanged. */
  private async revalidate(req: ManifestRequest, key: TagKey, mapping: TagMapping | undefined): Promise<ManifestResult> {
    this.d.stats.misses.manifest++;
    if (mapping || req.method === 'HEAD') {
      const answered = await this.d.upstream.manifest({ ...req, method: 'HEAD' });
      // A HEAD's Content-Type is not verified; for a manifest we hold, the type its bytes gave wins.
      const known = await this.cached(answered.digest, 'HEAD');
      const head = known ? { ...answered, mediaType: known.mediaType } : answered;
      await this.remember(key, { digest: head.digest, mediaType: head.mediaType, size: head.size, checkedAt: this.d.now() });
      if (req.method === 'HEAD') return { ...head, cache: 'miss' };
      const cached = await this.cached(head.digest, 'GET');
      if (cached) return { ...cached, endpoint: head.endpoint, attempts: head.attempts, cache: 'hit' };
      const result = await this.d.upstream.manifest({ ...req, ref: head.digest, method: 'GET' });
      await this.save(result);
      return { ...result, cache: 'miss' };
    }
    const result = await this.d.upstream.manifest(req);
    await this.save(result);
    await this.remember(key, { digest: result.digest, mediaType: result.mediaType, size: result.size, checkedAt: this.d.now() });
    return { ...result, cache: 'miss' };
  }

  private async fromMapping(req: ManifestRequest, m: TagMapping): Promise<ManifestResult | undefined> {
    if (req.method === 'HEAD') return { digest: m.digest, mediaType: m.mediaType, size: m.size, endpoint: 'cache' };
    const cached = await this.cached(m.digest, 'GET');
    return cached ? { ...cached, endpoint: 'cache' } : undefined;
  }

  /** From the manifest store only (never a blob); HEAD reads no body. An entry written by another process is learnt. */
  private async cached(digest: string, method: 'GET' | 'HEAD'): Promise<ManifestResult | undefined> {
    let found;
    try {
      found = method === 'HEAD' ? await this.d.manifests.head(digest) : await this.d.manifests.get(digest);
    } catch (err) {
      this.warnWrite('read', err);
      return undefined;
    }
    if (!found) {
      this.d.index.forget('manifest', digest);
      return undefined;
    }
    if (this.d.index.use('manifest', digest) === undefined) this.d.index.add('manifest', digest, found.size);
    return found;
  }

  private async save(result: ManifestResult): Promise<void> {
    if (!result.body) return;
    try {
      const stored = await this.d.manifests.put(result.digest, result.mediaType, result.body);
      this.d.index.add('manifest', result.digest, stored.size);
    } catch (err) {
      this.d.stats.writeFailures.manifest++;
      this.warnWrite('write', err);
    }
  }

  private async remember(key: TagKey, mapping: TagMapping): Promise<void> {
    try {
      const size = await this.d.tags.set(key, mapping);
      this.d.index.add('tag', tagId(key), size);
    } catch (err) {
      this.d.stats.writeFailures.tag++;
      this.warnWrite('write', err);
    }
  }

  /** Disk trouble is logged once per kind of failure, not once per request; the request is answered regardless. */
  private warnWrite(op: 'read' | 'write', err: unknown): void {
    const code = `${op} ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`;
    if (this.storageWarned.has(code)) return;
    if (this.storageWarned.size < 100) this.storageWarned.add(code);
    this.d.log.error({ err, op }, 'the manifest cache cannot use its storage; answering from upstream without caching');
  }
}
