// Blobs: warm from the store, cold through one shared BlobFill per digest. HEAD on a cold blob asks upstream
// with HEAD — no download. What to answer (head, full, partial, unsatisfiable) is planRange's decision, made
// once the size is known, the same way for warm and cold blobs.
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { planLength, planRange } from '../oci/range.js';
import type { BlobRequest, BlobResult } from '../oci/service.js';
import type { BlobSource } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import type { ProxyService } from '../upstream/service.js';
import type { BlobStore } from './blob-store.js';
import { BlobFill, type FillProgress } from './fill.js';
import { FillReader } from './fill-reader.js';
import type { EntryIndex } from './lru-index.js';
import type { CacheStats } from './stats.js';

type Request = BlobRequest<MirrorUpstream>;

export class BlobCache {
  private readonly fills = new Map<string, BlobFill>();

  constructor(
    private readonly store: BlobStore,
    private readonly index: EntryIndex,
    private readonly upstream: ProxyService,
    private readonly source: BlobSource,
    private readonly stats: CacheStats,
    private readonly log: Logger,
    private readonly opts: { fillTimeoutMs: number },
  ) {}

  /** Shutdown: no new retries, every running fill cancelled and its temp file removed. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.fills.values()].map((f) => f.cancel(new Error('ocimirror is shutting down'))));
  }

  private closed = false;

  get fillsInProgress(): number {
    return this.fills.size;
  }

  fillProgress(): (FillProgress & { digest: string })[] {
    return [...this.fills].map(([digest, fill]) => ({ digest, ...fill.progress() }));
  }

  async blob(req: Request): Promise<BlobResult & { cache: 'hit' | 'miss' | 'joined' }> {
    const size = this.index.use('blob', req.digest) ?? (await this.learn(req.digest));
    if (size !== undefined) return this.fromStore(req, size);
    const running = this.fills.get(req.digest);
    if (req.method === 'HEAD') {
      if (running?.size !== undefined) return { digest: req.digest, size: running.size, plan: { kind: 'head' }, endpoint: running.endpoint ?? 'fill', cache: 'joined' };
      const head = await this.upstream.blobHead(req);
      return { ...head, cache: 'miss' };
    }
    const fill = running ?? this.startFill(req);
    const release = fill.acquire();
    let total: number;
    try {
      total = await fill.whenSized();
    } catch (err) {
      release();
      throw err;
    }
    this.stats.misses.blob++;
    const plan = planRange(req.method, req.range, total);
    const base = { digest: req.digest, size: total, plan, endpoint: fill.endpoint ?? 'fill', attempts: fill.attempts, cache: running ? 'joined' as const : 'miss' as const };
    if (plan.kind !== 'full' && plan.kind !== 'partial') { release(); return base; }
    const reader = new FillReader(fill, plan.start, plan.end, release);
    countServed(reader, planLength(plan), () => reader.sent, (n) => { this.stats.bytesFromUpstream += n; });
    return { ...base, stream: reader };
  }

  /** A blob the index does not know may have been stored by another process (ocimirror import): the store decides. */
  private async learn(digest: string): Promise<number | undefined> {
    const stored = await this.store.stat(digest);
    if (!stored) return undefined;
    this.index.add('blob', digest, stored.size);
    return stored.size;
  }

  private async fromStore(req: Request, size: number): Promise<BlobResult & { cache: 'hit' }> {
    this.stats.hits.blob++;
    const plan = planRange(req.method, req.range, size);
    const base = { digest: req.digest, size, plan, endpoint: 'cache', cache: 'hit' as const };
    if (plan.kind !== 'full' && plan.kind !== 'partial') return base;
    const length = planLength(plan);
    const unpin = this.index.pin('blob', req.digest);
    try {
      const stream = length > 0 ? await this.store.open(req.digest, plan) : Readable.from([]);
      stream.once('close', unpin);
      countServed(stream, length, () => (stream as Readable & { bytesRead?: number }).bytesRead ?? 0, (n) => { this.stats.bytesFromCache += n; });
      return { ...base, stream };
    } catch (err) {
      unpin();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Deleted behind our back (manual clean-up): forget it and fetch again.
        this.index.forget('blob', req.digest);
        return this.blob(req) as Promise<BlobResult & { cache: 'hit' }>;
      }
      throw err;
    }
  }

  private startFill(req: Request, exclude?: BlobFill['retryExclude'], isRetry = false): BlobFill {
    const { digest, registry, repo, mirror } = req;
    const fill = new BlobFill({
      digest, repo, mirror, source: this.source, store: this.store, log: this.log, fillTimeoutMs: this.opts.fillTimeoutMs,
      ...(exclude ? { exclude } : {}),
    });
    this.fills.set(digest, fill);
    this.stats.fillsStarted++;
    fill.once('done', () => {
      this.fills.delete(digest);
      if (fill.stored) this.index.add('blob', digest, fill.stored.size);
    });
    fill.once('failed', () => {
      this.fills.delete(digest);
      this.stats.fillsFailed++;
      this.log.warn({ digest, registry, repo, error: fill.error?.message }, 'blob fill failed; nothing cached');
      // A corrupt transfer is retried once on the next endpoint, so the next client gets good bytes.
      if (fill.retryExclude && !isRetry && !this.closed && !this.fills.has(digest)) {
        const retry = this.startFill(req, fill.retryExclude, true);
        retry.on('failed', () => undefined);
      }
    });
    return fill.start();
  }
}


/**
 * Adds a stream's bytes to a counter once: all of them at 'end' (which precedes the client's last byte), or what
 * was read by 'close' when the client went away. Never a 'data' listener: that would start the stream flowing
 * before it is piped to the client.
 */
function countServed(stream: Readable, length: number, partial: () => number, add: (n: number) => void): void {
  let counted = false;
  stream.once('end', () => { counted = true; add(length); });
  stream.once('close', () => { if (!counted) add(partial()); });
}
