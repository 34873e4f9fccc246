// A blob streamed from upstream to one client without being cached: what a GET of an uncached blob gets while
// cache.maxFills fills are running, rather than a refusal or a wait of unknown length. Nothing touches the disk;
// the client's own pace is the transfer's (backpressure reaches the upstream body), and, as for a fill, a range
// that reaches the blob's end gets its last byte only once the whole blob matched the digest.
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { algorithmOf } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { planLength, planRange } from '../oci/range.js';
import type { BlobRequest, BlobResult } from '../oci/service.js';
import { BrokeOff, type BlobSink } from '../upstream/blob-body.js';
import type { BlobSource, BlobTransfer, OpenedBlob } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import type { CacheStats } from './stats.js';

/**
 * A GET answered from upstream without a fill: the transfer is opened at once (the size is needed for the plan)
 * and stopped when the client goes away.
 */
export async function uncachedBlob(source: BlobSource, req: BlobRequest<MirrorUpstream>, stats: CacheStats): Promise<BlobResult & { cache: 'miss' }> {
  const abort = new AbortController();
  const onGone = () => abort.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onGone, { once: true });
  try {
    const transfer = source.transfer({ mirror: req.mirror, repo: req.repo, digest: req.digest, signal: abort.signal });
    const opened = await openPassThrough(transfer, abort);
    if (!opened) throw new OciError('UNAVAILABLE', { digest: req.digest }, { status: 503, message: 'every fill slot is taken and the upstream did not say the blob\'s size; retry' });
    stats.misses.blob++;
    stats.blobsUncached++;
    const plan = planRange(req.method, req.range, opened.size);
    const base = { digest: req.digest, size: opened.size, plan, endpoint: opened.endpoint, attempts: opened.attempts, cache: 'miss' as const };
    if (plan.kind !== 'full' && plan.kind !== 'partial') { opened.discard(); return base; }
    const stream = opened.stream(req.digest, plan.start, plan.end);
    stream.once('end', () => { stats.bytesFromUpstream += planLength(plan); });
    return { ...base, stream };
  } finally {
    req.signal?.removeEventListener('abort', onGone);
  }
}

/** The first answer of an uncached transfer: its size, and a stream for [start, end] of the blob once planned. */
export interface OpenedPassThrough {
  size: number;
  endpoint: string;
  attempts: BlobTransfer['attempts'];
  /** The bytes [start, end] (inclusive) of the blob `digest`; call once, or `discard()`. */
  stream(digest: string, start: number, end: number): Readable;
  discard(): void;
}

/** Opens the transfer at byte 0; undefined when the endpoint did not say the blob's size (then a fill is needed). */
export async function openPassThrough(transfer: BlobTransfer, abort: AbortController): Promise<OpenedPassThrough | undefined> {
  const first = await transfer.open(0);
  if (first.size === undefined) {
    abort.abort(new Error('no size'));
    return undefined;
  }
  const size = first.size;
  return {
    size, endpoint: first.endpoint, attempts: transfer.attempts,
    stream: (digest, start, end) => new PassThroughStream(transfer, first, abort, digest, size, start, end),
    discard: () => abort.abort(new Error('not sent')),
  };
}

class PassThroughStream extends Readable {
  private readonly hash: Hash;
  /** Blob offset of the next byte from upstream. */
  private at = 0;
  /** The blob's last byte, held back until the digest is checked. */
  private last: Buffer | undefined;
  private wakeSource: (() => void) | undefined;

  constructor(
    private readonly transfer: BlobTransfer,
    first: OpenedBlob,
    private readonly abort: AbortController,
    private readonly digest: string,
    private readonly size: number,
    private readonly start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.hash = createHash(algorithmOf(digest));
    void this.run(first).then(() => this.push(null), (err: Error) => this.destroy(err));
  }

  override _read(): void {
    const wake = this.wakeSource;
    this.wakeSource = undefined;
    wake?.();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // The client went away (or the transfer failed): stop asking upstream.
    if (!this.abort.signal.aborted) this.abort.abort(err ?? new Error('client hung up'));
    cb(err);
  }

  private async run(first: OpenedBlob): Promise<void> {
    let opened = first;
    const sink: BlobSink = { write: (chunk) => this.receive(chunk) };
    for (;;) {
      try {
        await opened.body.pipeTo(sink);
        break;
      } catch (err) {
        if (this.destroyed) return;
        // A range that ends before the blob does is complete without the rest (and, as with a fill, unverified).
        if (this.at > this.end && this.end < this.size - 1) return;
        if (!(err instanceof BrokeOff)) throw err;
        opened = await this.transfer.open(this.at);
      }
    }
    const actual = `${algorithmOf(this.digest)}:${this.hash.digest('hex')}`;
    if (actual !== this.digest) {
      opened.reportCorrupt();
      throw new OciError('DIGEST_INVALID', { digest: this.digest, endpoint: opened.endpoint }, { status: 502, message: 'upstream sent bytes that do not match the digest' });
    }
    if (this.last) this.push(this.last);
  }

  /** Hashes every byte, hands on those in [start, end] (the blob's last byte only after the check). */
  private receive(chunk: Buffer): Promise<void> | undefined {
    if (this.destroyed) return Promise.reject(new Error('client hung up'));
    const from = this.at;
    this.at += chunk.length;
    this.hash.update(chunk);
    const lo = Math.max(this.start, from) - from;
    const hi = Math.min(this.end + 1, this.at) - from;
    if (hi <= lo) return this.afterEnd();
    let part = chunk.subarray(lo, hi);
    if (from + hi === this.size) {
      this.last = part.subarray(part.length - 1);
      part = part.subarray(0, part.length - 1);
    }
    if (part.length === 0 || this.push(part)) return this.afterEnd();
    return new Promise<void>((resolve) => { this.wakeSource = resolve; });
  }

  /** Past the end of a range that stops short of the blob's end: the rest is not needed. */
  private afterEnd(): Promise<void> | undefined {
    if (this.at > this.end && this.end < this.size - 1) return Promise.reject(new Error('range complete'));
    return undefined;
  }
}
