// The running blob fills, one per digest, and their limits: at most cache.maxFills at once (past it a GET streams
// through uncached: see BlobCache), at most cache.maxDetachedFills going on with no client attached (the next one
// whose last client leaves is cancelled), and each running fill's size counted against cache.maxSize from the
// moment it is known, so temp files cannot grow the cache past its cap.
import type { Logger } from 'pino';
import type { BlobSource } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import type { BlobStore } from './blob-store.js';
import { BlobFill, type FillProgress } from './fill.js';
import type { EntryIndex } from './lru-index.js';
import type { CacheStats } from './stats.js';

export interface FillLimits {
  fillTimeoutMs: number;
  /** Fills running at once. */
  maxFills: number;
  /** Fills running with no client attached. */
  maxDetachedFills: number;
}

export interface FillRequest { digest: string; registry: string; repo: string; mirror: MirrorUpstream }

export class FillSet {
  private readonly fills = new Map<string, BlobFill>();
  private closed = false;

  constructor(
    private readonly store: BlobStore,
    private readonly index: EntryIndex,
    private readonly source: BlobSource,
    private readonly stats: CacheStats,
    private readonly log: Logger,
    private readonly limits: FillLimits,
  ) {}

  get size(): number {
    return this.fills.size;
  }

  get(digest: string): BlobFill | undefined {
    return this.fills.get(digest);
  }

  /** What the status page shows of each running fill. */
  progress(): (FillProgress & { digest: string })[] {
    return [...this.fills].map(([digest, fill]) => ({ digest, ...fill.progress() }));
  }

  /**
   * Starts a fill, or returns undefined when maxFills are running (or shutdown began). `release` (a cluster's fill
   * lease) is called once the fill and any retry of it have ended; not at all when none was started.
   */
  start(req: FillRequest, release: () => void = () => undefined, exclude?: BlobFill['retryExclude']): BlobFill | undefined {
    if (this.closed || this.fills.size >= this.limits.maxFills) return undefined;
    const { digest, registry, repo, mirror } = req;
    const fill = new BlobFill({
      digest, repo, mirror, source: this.source, store: this.store, log: this.log, fillTimeoutMs: this.limits.fillTimeoutMs,
      ...(exclude ? { exclude } : {}),
    });
    this.fills.set(digest, fill);
    this.stats.fillsStarted++;
    let unreserve = () => undefined as void;
    fill.whenSized().then((size) => { if (fill.state === 'running' && this.index.reserve) unreserve = this.index.reserve(digest, size); }, () => undefined);
    fill.on('detached', () => this.detached(fill, req));
    fill.once('done', () => {
      this.fills.delete(digest);
      unreserve();
      if (fill.stored) this.index.add('blob', digest, fill.stored.size);
      release();
    });
    fill.once('failed', () => {
      this.fills.delete(digest);
      unreserve();
      this.stats.fillsFailed++;
      this.log.warn({ digest, registry, repo, error: fill.error?.message }, 'blob fill failed; nothing cached');
      // A corrupt transfer is retried once on the next endpoint, so the next client gets good bytes; the retry has
      // no client, so it is subject to the detached cap like any other.
      const retry = fill.retryExclude && !exclude && !this.fills.has(digest) && this.detachedCount() < this.limits.maxDetachedFills
        ? this.start(req, release, fill.retryExclude) : undefined;
      if (retry) retry.on('failed', () => undefined);
      else release();
    });
    return fill.start();
  }

  /** Shutdown: no new fills or retries, every running fill cancelled and its temp file removed. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.fills.values()].map((f) => f.cancel(new Error('ocimirror is shutting down'))));
  }

  private detachedCount(): number {
    let n = 0;
    for (const f of this.fills.values()) if (f.clients === 0 && f.state === 'running') n++;
    return n;
  }

  /** A fill lost its last client: it goes on for the next pull, unless too many already do without a client. */
  private detached(fill: BlobFill, req: FillRequest): void {
    if (this.detachedCount() <= this.limits.maxDetachedFills) return;
    this.stats.fillsCancelled++;
    this.log.info({ digest: req.digest, registry: req.registry, repo: req.repo, maxDetachedFills: this.limits.maxDetachedFills }, 'blob fill cancelled: its last client left and too many fills run without one');
    void fill.cancel(new Error(`cancelled: no client left, and cache.maxDetachedFills (${this.limits.maxDetachedFills}) fills already run without one`));
  }
}
