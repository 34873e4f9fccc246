// One upstream transfer per uncached blob, shared by every client that asks for it while it runs. Clients follow
// the bytes as they are written; the final byte is held back until the digest is verified. A fill has its own
// lifetime (bounded by cache.fillTimeout): a client disconnecting does not stop it. When an endpoint fails
// mid-body, the fill resumes from the next endpoint with Range; a digest mismatch fails every reader, caches
// nothing, counts against the endpoint and is retried once elsewhere.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { BlobStore, BlobWriter, StoredBlob } from './blob-store.js';
import { DigestMismatchError } from './blob-store.js';
import { OciError } from '../oci/errors.js';
import { AllEndpointsFailed, errorText, headerValue, type Attempt, type MirrorUpstream, type UpstreamEndpoint } from '../upstream/fallthrough.js';
import { upstreamFailure } from '../upstream/service.js';

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

  /** Bytes a reader may hand out: everything written, except the final byte until the digest has been verified. */
  get readable(): number {
    if (this.state === 'done') return this.size ?? this.written;
    return this.size === undefined ? 0 : Math.min(this.written, this.size - 1);
  }

  /** Resolves once the size is known (first upstream response), rejects if the fill failed before that. */
  async whenSized(): Promise<number> {
    await this.ready;
    if (this.size === undefined) throw this.error ?? new Error('fill ended without a size');
    return this.size;
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
        if (!m || Number(m[1]) !== offset) { await res.body.dump().catch(() => undefined); tried.add(endpoint); continue; }
        if (m[3] !== '*') this.setSize(Number(m[3]));
      } else {
        // 200: the whole blob (the endpoint ignored Range, or this is the first request); skip what we have.
        skipBytes = offset;
        const len = Number(headerValue(res.headers, 'content-length'));
        if (Number.isFinite(len)) this.setSize(len);
      }
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          let c = chunk;
          if (skipBytes > 0) {
            const n = Math.min(skipBytes, c.length);
            skipBytes -= n;
            c = c.subarray(n);
            if (c.length === 0) continue;
          }
          if (this.size !== undefined && this.writer.written + c.length > this.size) throw new Error('upstream sent more bytes than its Content-Length');
          await this.writer.write(c);
          this.emit('progress');
        }
        if (this.size !== undefined && this.writer.written < this.size) throw new Error(`body ended after ${this.writer.written} of ${this.size} bytes`);
      } catch (err) {
        if (this.abort.signal.aborted) { await this.writer.abort(); throw this.abort.signal.reason as Error; }
        const reason = errorText(err);
        log.warn({ digest, endpoint: endpoint.client.name, at: this.writer.written, reason }, 'blob transfer broke off; resuming from the next endpoint');
        this.attempts.push({ endpoint: endpoint.client.name, error: `broke off at byte ${this.writer.written}: ${reason}`, ms: 0 });
        endpoint.health.recordFailure(reason);
        res.body.destroy();
        tried.add(endpoint);
        continue;
      }
      try {
        return await this.writer.commit(this.size);
      } catch (err) {
        if (!(err instanceof DigestMismatchError)) throw err;
        endpoint.health.recordFailure('blob digest mismatch');
        log.warn({ digest, endpoint: endpoint.client.name, error: err.message }, 'upstream sent a corrupt blob; nothing cached');
        tried.add(endpoint);
        this.retrySkip = tried;
        throw new OciError('DIGEST_INVALID', { digest, endpoint: endpoint.client.name }, { status: 502, message: 'upstream sent bytes that do not match the digest', cause: err });
      }
    }
  }

  private setSize(size: number): void {
    if (this.size === undefined) { this.size = size; this.resolveReady(); return; }
    if (this.size !== size) throw new Error(`endpoints disagree on the blob size (${this.size} vs ${size})`);
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

  read(position: number, length: number): Promise<Buffer> {
    if (!this.writer) return Promise.resolve(Buffer.alloc(0));
    return this.writer.read(position, length);
  }
}
