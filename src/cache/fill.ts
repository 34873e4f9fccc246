// One upstream transfer per uncached blob, shared by every client that asks for it while it runs. Clients follow
// the bytes as they are written; the final byte is held back until the digest is verified. A fill has its own
// lifetime (bounded by cache.fillTimeout): a client disconnecting does not stop it. The fill only writes,
// verifies and feeds readers: which endpoint sends the bytes, from where, and what a failure means for the
// endpoint and the client is the blob source's (upstream/blob-source.ts). When a body breaks off, the fill opens
// the transfer again at what it has; a digest mismatch fails every reader, caches nothing, and leaves the
// transfer's exclusions for one retry elsewhere.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { BlobStore, BlobWriter, StoredBlob } from './blob-store.js';
import { DigestMismatchError } from './blob-store.js';
import { BatchedSink } from './batched-sink.js';
import { FillWindow } from './fill-window.js';
import { OciError } from '../oci/errors.js';
import { BrokeOff } from '../upstream/blob-body.js';
import type { BlobSource, BlobTransfer, BlobTransferRequest, OpenedBlob } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';

/** How much of a fill's tail is kept in memory for the clients following it (plus whatever is not on disk yet). */
const WINDOW_BYTES = 4 * 1024 * 1024;

/** What to fetch (mirror, repo, digest, endpoints to leave out) and where to put it. */
export interface FillOptions extends Omit<BlobTransferRequest, 'signal'> {
  source: BlobSource;
  store: BlobStore;
  log: Logger;
  fillTimeoutMs: number;
}

export interface FillProgress {
  repo: string;
  size: number | undefined;
  written: number;
  startedAt: number;
  /** Clients following the fill now. */
  clients: number;
  endpoint: string | undefined;
}

/** Whose fill it is: a blob is shared by digest, but whether it exists upstream depends on registry and repository. */
export const fillOrigin = (mirror: MirrorUpstream, repo: string): string => `${mirror.registry}/${repo}`;

export class BlobFill extends EventEmitter {
  size: number | undefined;
  endpoint: string | undefined;
  state: 'running' | 'done' | 'failed' = 'running';
  error: Error | undefined;
  stored: StoredBlob | undefined;
  /** Set when the fill failed on a digest mismatch: the endpoints a retry elsewhere must leave out. */
  retryExclude: BlobTransfer['excluded'] | undefined;
  private transfer: BlobTransfer | undefined;
  private writer: BlobWriter | undefined;
  private readers = 0;
  private readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private readonly abort = new AbortController();
  /** "registry/repository" the fill was started for: a client of another that joined may need its own attempt. */
  readonly origin: string;

  constructor(private readonly opts: FillOptions) {
    super();
    this.setMaxListeners(0);
    this.origin = fillOrigin(opts.mirror, opts.repo);
    this.ready = new Promise((resolve) => { this.resolveReady = resolve; });
  }

  /** Every upstream attempt of this fill, one array for its whole life (metrics count each array once). */
  get attempts(): BlobTransfer['attempts'] {
    return this.transfer?.attempts ?? [];
  }

  /** Bytes on disk (a reader that fell behind the window reads them from the file). */
  get written(): number {
    return this.writer?.written ?? 0;
  }

  private readonly startedAt = Date.now();

  /** What the status page shows of this fill. */
  progress(): FillProgress {
    return { repo: this.opts.repo, size: this.size, written: this.received, startedAt: this.startedAt, clients: this.readers, endpoint: this.endpoint };
  }

  /** Bytes received from upstream: in the window now, on disk in batches. */
  received = 0;
  private readonly window = new FillWindow(WINDOW_BYTES);

  /** True once the bytes matched the digest (before fsync and rename: clients need not wait for the disk). */
  verified = false;

  /** Bytes a reader may hand out: everything received, except the final byte until the digest has been verified. */
  get readable(): number {
    if (this.verified || this.state === 'done') return this.size ?? this.written;
    return this.size === undefined ? 0 : Math.min(this.received, this.size - 1);
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
    if (state === 'done' && this.size === undefined) this.size = this.stored?.size ?? this.written;
    this.state = state;
    // Readers that are still behind read the file from here on: a stalled client must not pin the window.
    this.window.clear();
    this.resolveReady();
    this.emit('progress');
    this.emit(state);
    if (this.readers === 0) void this.writer?.close();
  }

  /** The stored blob, or undefined when verified bytes could not be stored: the clients still get them. */
  private async run(): Promise<StoredBlob | undefined> {
    const { digest, mirror, repo, exclude, source, store } = this.opts;
    const transfer = source.transfer({ mirror, repo, digest, signal: this.abort.signal, ...(exclude ? { exclude } : {}) });
    this.transfer = transfer;
    const writer = await store.createWriter(digest);
    this.writer = writer;
    for (;;) {
      let opened: OpenedBlob;
      try {
        opened = await transfer.open(writer.written);
      } catch (err) {
        await writer.abort();
        throw err;
      }
      this.endpoint = opened.endpoint;
      if (this.size === undefined && opened.size !== undefined) { this.size = opened.size; this.resolveReady(); }
      if (!(await this.receive(opened, writer))) continue;
      try {
        await writer.verify(this.size);
      } catch (err) {
        if (!(err instanceof DigestMismatchError)) throw err;
        opened.reportCorrupt();
        this.opts.log.warn({ digest, endpoint: opened.endpoint, error: err.message }, 'upstream sent a corrupt blob; nothing cached');
        this.retryExclude = transfer.excluded;
        throw new OciError('DIGEST_INVALID', { digest, endpoint: opened.endpoint }, { status: 502, message: 'upstream sent bytes that do not match the digest', cause: err });
      }
      // Verified: clients may take the last byte now; making it durable (fsync, rename) happens behind them.
      this.verified = true;
      this.emit('progress');
      try {
        return await writer.commit(this.size);
      } catch (err) {
        this.opts.log.error({ digest, err: (err as Error).message }, 'could not store a verified blob; served uncached');
        return undefined;
      }
    }
  }

  /** Writes one opened body; false when the endpoint broke off and the transfer must be opened again. */
  private async receive(opened: OpenedBlob, writer: BlobWriter): Promise<boolean> {
    const sink = new BatchedSink(writer, () => { this.window.trim(writer.written); this.wake(); });
    // Every received byte is written (drained) before a resume, so the next open starts where this one ended.
    this.received = writer.written;
    const receiving = {
      write: (chunk: Buffer) => {
        this.window.push(this.received, chunk);
        this.received += chunk.length;
        this.wake();
        return sink.write(chunk);
      },
    };
    try {
      await opened.body.pipeTo(receiving);
      await sink.drain();
      return true;
    } catch (err) {
      // Keep what arrived intact: the resume starts exactly after it.
      await sink.drain().catch(() => undefined);
      if (this.abort.signal.aborted) { await writer.abort(); throw this.abort.signal.reason as Error; }
      if (sink.failed) {
        await writer.abort();
        this.opts.log.error({ digest: this.opts.digest, err }, 'cannot write to the cache directory');
        throw new OciError('UNKNOWN', { digest: this.opts.digest }, { status: 500, message: 'the mirror could not write to its cache', cause: err });
      }
      if (!(err instanceof BrokeOff)) { await writer.abort(); throw err; }
      this.opts.log.warn({ digest: this.opts.digest, endpoint: err.endpoint, at: writer.written, reason: err.reason }, 'blob transfer broke off; resuming from the next endpoint');
      return false;
    }
  }

  private wakeScheduled = false;

  /**
   * Tells readers there is more, once per turn of the event loop: the chunks one poll phase read (up to 32 socket
   * reads) reach each client together, as one corked socket write, instead of a wake-up and a syscall per chunk.
   */
  private wake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.emit('progress');
    });
  }

  /** Clients attached now; a running fill with none is detached (it goes on for the next pull). */
  get clients(): number {
    return this.readers;
  }

  /**
   * A client joins: it holds the writer open until `release` (call it when done). The fill emits 'detached' when
   * its last client leaves while it runs.
   */
  acquire(): () => void {
    this.readers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers > 0) return;
      if (this.state === 'running') this.emit('detached');
      else void this.writer?.close();
    };
  }

  /** Bytes at `position` from the in-memory window (zero-copy), or undefined when they are only on disk. */
  peek(position: number, length: number): Buffer | undefined {
    return this.window.peek(position, length);
  }

  /** Reads bytes from the file: only what is on disk (the window holds everything that is not). */
  read(position: number, length: number): Promise<Buffer> {
    const n = Math.min(length, this.written - position);
    if (!this.writer || n <= 0) return Promise.resolve(Buffer.alloc(0));
    return this.writer.read(position, n);
  }
}
