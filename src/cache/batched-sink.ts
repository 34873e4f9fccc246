// Group commit of upstream bytes into the cache file, for BlobFill.
import type { BlobSink } from '../upstream/blob-body.js';
import type { BlobWriter } from './blob-store.js';

/** While a write is in flight, upstream chunks are gathered; past this much, reading waits for the disk. */
const BATCH_BYTES = 1024 * 1024;

/**
 * Group commit: a chunk is written at once when the disk is idle; chunks arriving meanwhile are gathered and
 * written together when it is done — few syscalls and wake-ups under load, no added latency on a slow link.
 * Each batch is reported once it is on disk (`onWritten`): only then may the fill's window let go of its bytes.
 */
export class BatchedSink implements BlobSink {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private inflight: Promise<void> | undefined;
  private error: unknown;

  /** A local write failed (disk full, I/O error): not the endpoint's fault. */
  get failed(): boolean {
    return this.error !== undefined;
  }

  constructor(private readonly writer: BlobWriter, private readonly onWritten: () => void) {}

  /** Waits (returns a promise) only when a full batch is queued behind a write in flight. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.error) return Promise.reject(this.error);
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (!this.inflight) this.startWrite();
    else if (this.batchBytes >= BATCH_BYTES) return this.idle();
    return undefined;
  }

  private startWrite(): void {
    const buf = this.batch.length === 1 ? (this.batch[0] as Buffer) : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    this.inflight = this.writer.write(buf).then(
      () => {
        this.inflight = undefined;
        this.onWritten();
        if (this.batchBytes > 0 && !this.error) this.startWrite();
      },
      (err: unknown) => { this.error = err; this.inflight = undefined; },
    );
  }

  private async idle(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.error) throw this.error;
  }

  /** Writes whatever is pending and waits for it. */
  async drain(): Promise<void> {
    await this.idle();
    if (this.batchBytes > 0) { this.startWrite(); await this.idle(); }
  }
}
