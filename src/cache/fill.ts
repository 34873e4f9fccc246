// One upstream transfer per uncached blob, shared by every client that asks for it while it runs. Clients follow
// the bytes as they are written; the final byte is held back until the digest is verified. A fill has its own
// lifetime (bounded by cache.fillTimeout): a client disconnecting does not stop it. When an endpoint fails
// mid-body, the fill resumes from the next endpoint with Range; a digest mismatch fails every reader, caches
// nothing, counts against the endpoint and is retried once elsewhere.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { BlobStore, BlobWriter, StoredBlob } from './blob-store.js';
import { DigestMismatchError } from './blob-store.js';
import { BatchedSink } from './batched-sink.js';
import { OciError } from '../oci/errors.js';
import { AllEndpointsFailed, errorText, headerValue, type Attempt, type MirrorUpstream, type UpstreamEndpoint } from '../upstream/fallthrough.js';
import { upstreamFailure } from '../upstream/service.js';

/** How much of a fill's tail is kept in memory for the clients following it. */
const WINDOW_BYTES = 8 * 1024 * 1024;

export interface FillOptions {
  digest: string;
  repo: string;
  mirror: MirrorUpstream;
  store: BlobStore;
  log: Logger;
  fillTimeoutMs: number;
  failureStatus: 503 | 504 | 404;
  /** Endpoints not to use (a retry after a digest mismatch starts without the endpoint that lied). */
  skip?: Set<UpstreamEndpoint>;
}

export class BlobFill extends EventEmitter {
  size: number | undefined;
  endpoint: string | undefined;
  readonly attempts: Attempt[] = [];
  state: 'running' | 'done' | 'failed' = 'running';
  error: Error | undefined;
  stored: StoredBlob | undefined;
  /** Set when the fill failed on a digest mismatch and may be retried on another endpoint. */
  retrySkip: Set<UpstreamEndpoint> | undefined;
  private writer: BlobWriter | undefined;
  private readers = 0;
  private readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private readonly abort = new AbortController();

  constructor(private readonly opts: FillOptions) {
    super();
    this.setMaxListeners(0);
    this.ready = new Promise((resolve) => { this.resolveReady = resolve; });
  }

  get written(): number {
    return this.writer?.written ?? 0;
  }

  /** True once the bytes matched the digest (before fsync and rename: clients need not wait for the disk). */
  verified = false;

  /** Bytes a reader may hand out: everything written, except the final byte until the digest has been verified. */
  get readable(): number {
    if (this.verified || this.state === 'done') return this.size ?? this.written;
    return this.size === undefined ? 0 : Math.min(this.written, this.size - 1);
  }

  /** Resolves once the size is known (first upstream response), rejects if the fill failed before that. */
  async whenSized(): Promise<number> {
    await this.ready;
    if (this.size === undefined) throw this.error ?? new Error('fill ended without a size');
    return this.size;
  }

  /** Stops the transfer (shutdown): readers fail, the temp file is removed. Resolves when the fill has ended. */
  async cancel(reason: Error): Promise<void> {
    if (this.state !== 'running') return;
    const ended = new Promise((resolve) => this.once('done', resolve).once('failed', resolve));
    this.abort.abort(reason);
    await ended;
  }

  start(): this {
    const timer = setTimeout(() => this.abort.abort(new Error(`fill timed out after ${this.opts.fillTimeoutMs} ms`)), this.opts.fillTimeoutMs);
    timer.unref();
    this.run().then(
      (stored) => { this.stored = stored; this.finish('done'); },
      (err: Error) => { this.error = err; this.finish('failed'); },
    ).finally(() => clearTimeout(timer));
    return this;
  }

  private finish(state: 'done' | 'failed'): void {
    // An upstream that sent no Content-Length: clients waited for the whole blob, which now has a size.
    if (state === 'done' && this.size === undefined && this.stored) this.size = this.stored.size;
    this.state = state;
    this.resolveReady();
    this.emit('progress');
    this.emit(state);
    if (this.readers === 0) void this.writer?.close();
  }

  private async run(): Promise<StoredBlob> {
    const { digest, repo, mirror, store, log } = this.opts;
    const tried = new Set(this.opts.skip ?? []);
    this.writer = await store.createWriter(digest);
    for (;;) {
      const offset = this.writer.written;
      let fetched;
      try {
        fetched = await mirror.fetch({
          method: 'GET', repo, suffix: `/blobs/${digest}`, skip: tried, signal: this.abort.signal,
          headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
        });
      } catch (err) {
        await this.writer.abort();
        if (err instanceof AllEndpointsFailed) throw upstreamFailure(err, 'BLOB_UNKNOWN', this.opts.failureStatus, this.attempts);
        throw err;
      }
      const { res, endpoint } = fetched;
      this.attempts.push(...fetched.attempts);
      this.endpoint = endpoint.client.name;
      let skipBytes = 0;
      const contentRange = headerValue(res.headers, 'content-range');
      if (res.status === 206 && contentRange) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange);
        if (!m || Number(m[1]) !== offset || (m[3] !== '*' && !this.setSize(Number(m[3])))) {
          await res.body.dump().catch(() => undefined);
          tried.add(endpoint);
          continue;
        }
      } else {
        // 200: the whole blob (the endpoint ignored Range, or this is the first request); skip what we have.
        skipBytes = offset;
        const len = Number(headerValue(res.headers, 'content-length'));
        if (Number.isFinite(len) && !this.setSize(len)) {
          // This endpoint has a different blob under the digest: never mix its bytes with what we have.
          await res.body.dump().catch(() => undefined);
          tried.add(endpoint);
          continue;
        }
      }
      const sink = new BatchedSink(this.writer, (at, buf) => this.remember(at, buf));
      let received = offset;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          let c = chunk;
          if (skipBytes > 0) {
            const n = Math.min(skipBytes, c.length);
            skipBytes -= n;
            c = c.subarray(n);
            if (c.length === 0) continue;
          }
          received += c.length;
          if (this.size !== undefined && received > this.size) throw new Error('upstream sent more bytes than its Content-Length');
          await sink.push(c);
        }
        await sink.drain();
        if (this.size !== undefined && received < this.size) throw new Error(`body ended after ${received} of ${this.size} bytes`);
      } catch (err) {
        // Keep what arrived intact: the resume starts exactly after it.
        await sink.drain().catch(() => undefined);
        if (this.abort.signal.aborted) { await this.writer.abort(); throw this.abort.signal.reason as Error; }
        if (sink.failed) {
          res.body.destroy();
          await this.writer.abort();
          log.error({ digest, err }, 'cannot write to the cache directory');
          throw new OciError('UNKNOWN', { digest }, { status: 500, message: 'the mirror could not write to its cache', cause: err });
        }
        const reason = errorText(err);
        log.warn({ digest, endpoint: endpoint.client.name, at: this.writer.written, reason }, 'blob transfer broke off; resuming from the next endpoint');
        this.attempts.push({ endpoint: endpoint.client.name, error: `broke off at byte ${this.writer.written}: ${reason}`, ms: 0 });
        endpoint.health.recordFailure(reason);
        res.body.destroy();
        tried.add(endpoint);
        continue;
      }
      try {
        await this.writer.verify(this.size);
      } catch (err) {
        if (!(err instanceof DigestMismatchError)) throw err;
        endpoint.health.recordFailure('blob digest mismatch');
        log.warn({ digest, endpoint: endpoint.client.name, error: err.message }, 'upstream sent a corrupt blob; nothing cached');
        tried.add(endpoint);
        this.retrySkip = tried;
        throw new OciError('DIGEST_INVALID', { digest, endpoint: endpoint.client.name }, { status: 502, message: 'upstream sent bytes that do not match the digest', cause: err });
      }
      // Verified: clients may take the last byte now; making it durable (fsync, rename) happens behind them.
      this.verified = true;
      this.emit('progress');
      return await this.writer.commit(this.size);
    }
  }

  /** Records the blob's size; false when it contradicts the size an earlier endpoint gave. */
  private setSize(size: number): boolean {
    if (this.size === undefined) { this.size = size; this.resolveReady(); return true; }
    return this.size === size;
  }

  /** A reader holds the writer open; `release` must be called when it is done. */
  acquire(): () => void {
    this.readers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers === 0 && this.state !== 'running') void this.writer?.close();
    };
  }

  /** The most recently written bytes, kept in memory so clients following the fill need no file reads. */
  private window: { at: number; buf: Buffer }[] = [];
  private windowBytes = 0;

  private remember(at: number, buf: Buffer): void {
    this.window.push({ at, buf });
    this.windowBytes += buf.length;
    while (this.windowBytes > WINDOW_BYTES && this.window.length > 1) this.windowBytes -= (this.window.shift() as { buf: Buffer }).buf.length;
    this.emit('progress');
  }

  /** Bytes at `position` from the in-memory window (zero-copy), or undefined when they are only on disk. */
  peek(position: number, length: number): Buffer | undefined {
    for (const { at, buf } of this.window) {
      if (position >= at && position < at + buf.length) return buf.subarray(position - at, Math.min(buf.length, position - at + length));
    }
    return undefined;
  }

  read(position: number, length: number): Promise<Buffer> {
    if (!this.writer) return Promise.resolve(Buffer.alloc(0));
    return this.writer.read(position, length);
  }
}
