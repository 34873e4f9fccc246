// Blobs: warm from the store, cold through one shared BlobFill per digest. HEAD on a cold blob asks upstream
// with HEAD — no download. What to answer (head, full, partial, unsatisfiable) is planRange's decision, made
// once the size is known, the same way for warm and cold blobs. In a cluster, a miss is filled by one replica
// for all (shared-fills.ts); the others stream it from that replica. An object store that cannot be reached
// makes a known blob a 503 and an unknown one a miss, fetched from upstream and served uncached. Past
// cache.maxFills running fills, a miss is streamed through uncached (pass-through.ts).
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { OciError } from '../oci/errors.js';
import { planLength, planRange, rangeHeader, type ByteRange } from '../oci/range.js';
import type { BlobRequest, BlobResult } from '../oci/service.js';
import type { BlobSource } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import { isNotFound, type ProxyService } from '../upstream/service.js';
import { StoreUnavailableError, type BlobStore } from './blob-store.js';
import { fillOrigin, type BlobFill, type FillProgress } from './fill.js';
import { FillReader } from './fill-reader.js';
import { FillSender } from './fill-sender.js';
import { FillSet, type FillLimits } from './fill-set.js';
import { uncachedBlob } from './pass-through.js';
import type { EntryIndex } from './lru-index.js';
import type { SharedFills } from './shared-fills.js';
import type { CacheStats } from './stats.js';

type Request = BlobRequest<MirrorUpstream>;
/** How long a redirect's signed URL works: enough for the client to start its GET, short enough to leak little. */
const REDIRECT_SECONDS = 300;
type Answer = BlobResult & { cache: 'hit' | 'miss' | 'joined' };
/** What this replica does about a miss: run or join a fill here, follow another replica's, read the store, or (every fill slot taken) stream it through. */
type Decision = { fill: BlobFill } | { owner: string } | { stored: number } | { uncached: true };

export class BlobCache {
  private readonly fills: FillSet;
  private readonly deciding = new Map<string, Promise<Decision>>();
  private storeDown = false;

  constructor(
    private readonly store: BlobStore,
    private readonly index: EntryIndex,
    private readonly upstream: ProxyService,
    private readonly source: BlobSource,
    private readonly stats: CacheStats,
    private readonly log: Logger,
    private readonly opts: FillLimits & { shared?: SharedFills; redirect?: boolean },
  ) {
    this.fills = new FillSet(store, index, source, stats, log, opts);
  }

  /** Shutdown: no new fills or retries, every running fill cancelled and its temp file removed. */
  close(): Promise<void> {
    return this.fills.close();
  }

  get fillsInProgress(): number {
    return this.fills.size;
  }

  fillProgress(): (FillProgress & { digest: string })[] {
    return this.fills.progress();
  }

  async blob(req: Request): Promise<Answer> {
    const size = this.index.use('blob', req.digest) ?? (await this.learn(req.digest));
    if (size !== undefined) return this.fromStore(req, size);
    const running = this.fills.get(req.digest);
    if (req.method === 'HEAD') {
      if (running?.size !== undefined) return { digest: req.digest, size: running.size, plan: { kind: 'head' }, endpoint: running.endpoint ?? 'fill', cache: 'joined' };
      const head = await this.upstream.blobHead(req);
      return { ...head, cache: 'miss' };
    }
    if (running) {
      return this.join(running, req, 'joined').catch((err: unknown) => {
        // Joined a fill for another registry or repository that was not found there: this one may have it.
        if (isNotFound(err) && running.origin !== fillOrigin(req.mirror, req.repo)) return this.blob(req);
        throw err;
      });
    }
    if (!this.opts.shared) return this.fillOrStream(req);
    return this.missShared(req, this.opts.shared);
  }

  /** A new fill for this miss, or past cache.maxFills the blob streamed through uncached. */
  private fillOrStream(req: Request, release?: () => void): Promise<Answer> {
    const decision = this.startDecided(req, release);
    return 'fill' in decision ? this.join(decision.fill, req, 'miss') : uncachedBlob(this.source, req, this.stats);
  }

  /** A client joins a fill running here (the owner's route for other replicas does too). */
  private async join(fill: BlobFill, req: { digest: string; method: 'GET' | 'HEAD'; range?: ByteRange; acceptsSender?: boolean }, cache: 'miss' | 'joined'): Promise<Answer> {
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
    const base = { digest: req.digest, size: total, plan, endpoint: fill.endpoint ?? 'fill', attempts: fill.attempts, cache };
    if (plan.kind !== 'full' && plan.kind !== 'partial') { release(); return base; }
    if (req.acceptsSender) {
      return { ...base, sender: new FillSender(fill, plan.start, plan.end, release, (sent) => { this.stats.bytesFromUpstream += sent; }) };
    }
    const reader = new FillReader(fill, plan.start, plan.end, release);
    countServed(reader, planLength(plan), () => reader.sent, (n) => { this.stats.bytesFromUpstream += n; });
    return { ...base, stream: reader };
  }

  /** For another replica following this one: the fill of `digest` running here, or undefined. */
  async followLocal(digest: string, range: ByteRange | undefined): Promise<Answer | undefined> {
    const fill = this.fills.get(digest);
    return fill ? this.join(fill, { digest, method: 'GET', ...(range ? { range } : {}) }, 'joined') : undefined;
  }

  /**
   * A miss in a cluster: fill it here if this replica wins the lease, else stream it from the replica that did.
   * An owner that finished is followed to the store; one that cannot be reached is waited for until its lease
   * expires (it died: the next claim wins), and at worst past that the blob is fetched here anyway.
   */
  private async missShared(req: Request, shared: SharedFills): Promise<Answer> {
    const giveUpAt = Date.now() + shared.leaseTtlMs + 5_000;
    for (;;) {
      req.signal?.throwIfAborted();
      const decision = await this.decide(req, shared);
      if ('fill' in decision) return this.join(decision.fill, req, 'miss');
      if ('uncached' in decision) return uncachedBlob(this.source, req, this.stats);
      if ('stored' in decision) return this.fromStore(req, decision.stored);
      const answer = await shared.follow(decision.owner, req.digest, req.range && rangeHeader(req.range), req.signal);
      if (answer.kind === 'fill') return this.fromPeer(req, answer, decision.owner);
      const stored = await this.learn(req.digest);
      if (stored !== undefined) return this.fromStore(req, stored);
      if (Date.now() > giveUpAt) {
        this.log.warn({ digest: req.digest, owner: decision.owner, reason: answer.kind === 'unreachable' ? answer.reason : 'no fill there' }, 'the replica owning this fill does not answer; fetching the blob here');
        const running = this.fills.get(req.digest);
        return running ? this.join(running, req, 'miss') : this.fillOrStream(req);
      }
      // The owner is gone (or done and releasing): ask again shortly.
      await pause(answer.kind === 'unreachable' ? 500 : 100, req.signal);
    }
  }

  /** One claim per digest at a time on this replica: concurrent local misses share its outcome. */
  private decide(req: Request, shared: SharedFills): Promise<Decision> {
    const running = this.fills.get(req.digest);
    if (running) return Promise.resolve({ fill: running });
    let pending = this.deciding.get(req.digest);
    if (!pending) {
      pending = this.claim(req, shared).finally(() => this.deciding.delete(req.digest));
      this.deciding.set(req.digest, pending);
    }
    return pending;
  }

  private async claim(req: Request, shared: SharedFills): Promise<Decision> {
    const claim = await shared.claim(req.digest);
    if (claim.kind === 'follow') {
      // Once per blob and replica (concurrent misses here share this claim).
      this.log.info({ digest: req.digest, owner: claim.owner }, 'another replica is filling this blob; streaming it from there');
      return { owner: claim.owner };
    }
    const running = this.fills.get(req.digest);
    if (claim.kind === 'self') {
      // Our own earlier fill (finished, its release still on the way) or a lease we never knew we took.
      if (running) return { fill: running };
      const stored = await this.learn(req.digest);
      return stored !== undefined ? { stored } : this.startDecided(req);
    }
    if (running) { claim.release(); return { fill: running }; }
    // The owner before us may have stored it and released the lease since this replica looked: look again.
    const stored = await this.learn(req.digest);
    if (stored !== undefined) { claim.release(); return { stored }; }
    return this.startDecided(req, claim.release);
  }

  /** A new fill, or `uncached` past cache.maxFills (then `release`, the fill lease in a cluster, is let go). */
  private startDecided(req: Request, release?: () => void): { fill: BlobFill } | { uncached: true } {
    const fill = this.fills.start(req, release);
    if (fill) return { fill };
    release?.();
    return { uncached: true };
  }

  /** The bytes as the owning replica streams them; its plan of the same Range is ours. */
  private fromPeer(req: Request, answer: Extract<Awaited<ReturnType<SharedFills['follow']>>, { kind: 'fill' }>, owner: string): Answer {
    const plan = planRange(req.method, req.range, answer.size);
    const base = { digest: req.digest, size: answer.size, plan, endpoint: `replica ${owner}`, cache: 'joined' as const };
    this.stats.misses.blob++;
    if (plan.kind !== 'full' && plan.kind !== 'partial') { answer.body.destroy(); return base; }
    if (answer.status !== (plan.kind === 'full' ? 200 : 206)) {
      answer.body.destroy();
      throw new OciError('UNAVAILABLE', { owner, status: answer.status }, { message: 'the replica filling this blob answered unexpectedly; retry' });
    }
    countServed(answer.body, planLength(plan), () => 0, (n) => { this.stats.bytesFromReplicas += n; });
    return { ...base, stream: answer.body };
  }

  /** A blob the index does not know may have been stored by another process (ocimirror import): the store decides. */
  private async learn(digest: string): Promise<number | undefined> {
    let stored;
    try {
      stored = await this.store.stat(digest);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      if (!this.storeDown) this.log.error({ err: err.message }, 'the object store cannot be reached; misses are fetched from upstream and served uncached, cached blobs answer 503');
      this.storeDown = true;
      return undefined;
    }
    this.storeDown = false;
    if (!stored) return undefined;
    this.index.add('blob', digest, stored.size);
    return stored.size;
  }

  private async fromStore(req: Request, size: number): Promise<Answer> {
    this.stats.hits.blob++;
    const plan = planRange(req.method, req.range, size);
    const base = { digest: req.digest, size, plan, endpoint: 'cache', cache: 'hit' as const };
    if (plan.kind !== 'full' && plan.kind !== 'partial') return base;
    if (this.opts.redirect && this.store.presign) return this.redirect(req, base, this.store.presign.bind(this.store));
    const length = planLength(plan);
    const unpin = this.index.pin('blob', req.digest);
    try {
      if (req.acceptsSender && length > 0 && this.store.sender) {
        const sender = await this.store.sender(req.digest, plan, (sent) => { unpin(); this.stats.bytesFromCache += sent; }, size);
        return { ...base, sender };
      }
      const stream = length > 0 ? await this.store.open(req.digest, plan) : Readable.from([]);
      stream.once('close', unpin);
      countServed(stream, length, () => (stream as Readable & { bytesRead?: number }).bytesRead ?? 0, (n) => { this.stats.bytesFromCache += n; });
      return { ...base, stream };
    } catch (err) {
      unpin();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Deleted behind our back (manual clean-up): forget it and fetch again.
        this.index.forget('blob', req.digest);
        return this.blob(req);
      }
      if (err instanceof StoreUnavailableError) {
        throw new OciError('UNAVAILABLE', { digest: req.digest }, { message: 'the cache cannot reach its object store; retry, or pull from another mirror', cause: err });
      }
      throw err;
    }
  }

  /** A warm GET answered with a 307 to the store; checked first, so nobody is sent to a blob evicted elsewhere. */
  private async redirect(req: Request, base: BlobResult & { cache: 'hit' }, presign: (digest: string, seconds: number) => Promise<string>): Promise<Answer> {
    let present;
    try {
      present = await this.store.stat(req.digest);
    } catch (err) {
      throw new OciError('UNAVAILABLE', { digest: req.digest }, { message: 'the cache cannot reach its object store; retry, or pull from another mirror', cause: err });
    }
    if (!present) {
      this.index.forget('blob', req.digest);
      return this.blob(req);
    }
    this.stats.redirects++;
    return { ...base, redirect: await presign(req.digest, REDIRECT_SECONDS) };
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

/** Waits `ms`, or less if the client went away. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
