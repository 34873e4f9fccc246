// A client's view of a running fill: a Readable over [start, end] that hands out bytes as the fill makes them
// readable, with backpressure from the client, and fails (aborting the client) if the fill fails. What the client
// has not taken stays in the fill's window or its file, never here: at most one highWaterMark is buffered per
// client, and the fill never waits for a reader.
import { Readable } from 'node:stream';
import type { BlobFill } from './fill.js';

/** Largest read from the file, for a client that is behind the window (or joined late). */
const CHUNK = 1024 * 1024;

export class FillReader extends Readable {
  private position: number;
  /** Bytes handed to the client so far. */
  sent = 0;
  /** The client wants more (set by _read, cleared when push() says its buffer is full). */
  private reading = false;
  /** A file read is under way: the next bytes come from it. */
  private fileRead = false;
  private readonly release: () => void;
  private readonly onProgress = () => { if (this.reading) this.pump(); };

  /** `release` comes from fill.acquire(), taken when the client joined, so the file cannot close under it. */
  constructor(private readonly fill: BlobFill, start: number, private readonly end: number, release: () => void) {
    super({ highWaterMark: CHUNK });
    this.position = start;
    this.release = release;
    fill.on('progress', this.onProgress);
  }

  override _read(): void {
    this.reading = true;
    this.pump();
  }

  /** Hands out what is available: from the window in this tick; from the file with one read at a time. */
  private pump(): void {
    const fill = this.fill;
    while (this.reading && !this.fileRead && !this.destroyed) {
      if (fill.state === 'failed') { this.destroy(fill.error ?? new Error('blob fill failed')); return; }
      if (this.position > this.end) {
        // A range that reaches the blob's end (or an empty blob) ends only after the digest was verified.
        if (this.end >= (fill.size ?? 0) - 1 && !fill.verified && fill.state !== 'done') return;
        this.push(null);
        this.cleanup();
        return;
      }
      const available = Math.min(fill.readable, this.end + 1) - this.position;
      if (available <= 0) return; // wait for the next 'progress'
      const want = Math.min(available, CHUNK);
      const buf = fill.peek(this.position, want);
      if (!buf) { this.readFile(want); return; }
      this.hand(buf);
    }
  }

  private hand(buf: Buffer): void {
    this.position += buf.length;
    this.sent += buf.length;
    this.reading = this.push(buf);
  }

  private readFile(want: number): void {
    this.fileRead = true;
    this.fill.read(this.position, want).then((buf) => {
      this.fileRead = false;
      if (this.destroyed) return;
      // Nothing on disk there yet: the next 'progress' (a batch written, the fill's end) wakes the pump.
      if (buf.length === 0) return;
      this.hand(buf);
      this.pump();
    }, (err: Error) => this.destroy(err));
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
