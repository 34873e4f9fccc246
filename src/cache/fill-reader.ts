// A client's view of a running fill: a Readable over [start, end] that hands out bytes as the fill makes them
// readable, with backpressure from the client, and fails (aborting the client) if the fill fails.
import { Readable } from 'node:stream';
import type { BlobFill } from './fill.js';

const CHUNK = 1024 * 1024;

export class FillReader extends Readable {
  private position: number;
  /** Bytes handed to the client so far. */
  sent = 0;
  private reading = false;
  private readonly release: () => void;
  private readonly onProgress = () => { if (this.reading) void this.pump(); };

  /** `release` comes from fill.acquire(), taken when the client joined, so the file cannot close under it. */
  constructor(private readonly fill: BlobFill, start: number, private readonly end: number, release: () => void) {
    super({ highWaterMark: CHUNK });
    this.position = start;
    this.release = release;
    fill.on('progress', this.onProgress);
  }

  override _read(): void {
    this.reading = true;
    void this.pump();
  }

  private pumping = false;

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.reading && !this.destroyed) {
        if (this.fill.state === 'failed') { this.destroy(this.fill.error ?? new Error('blob fill failed')); return; }
        if (this.position > this.end) {
          // A range that reaches the blob's end (or an empty blob) ends only after the digest was verified.
          if (this.end >= (this.fill.size ?? 0) - 1 && !this.fill.verified && this.fill.state !== 'done') return;
          this.push(null);
          this.cleanup();
          return;
        }
        const available = Math.min(this.fill.readable, this.end + 1) - this.position;
        if (available <= 0) return; // wait for the next 'progress'
        const want = Math.min(available, CHUNK);
        const buf = this.fill.peek(this.position, want) ?? (await this.fill.read(this.position, want));
        if (this.destroyed) return;
        if (buf.length === 0) return;
        this.position += buf.length;
        this.sent += buf.length;
        this.reading = this.push(buf);
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  private cleanup(): void {
    this.fill.off('progress', this.onProgress);
    this.release();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.cleanup();
    cb(err);
  }
}
