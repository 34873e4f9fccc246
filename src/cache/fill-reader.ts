// A client's view of a running fill as a Readable over [start, end], for callers that take a stream rather than a
// raw response (another replica following this one's fill, `export`, the S3 paths). It is a FillSender writing
// into a PassThrough: the window, the file reads of a client behind it, the last byte held until the digest is
// verified, and a failed fill failing the stream are FillSender's, written once. Backpressure from the reader
// reaches the sender as a full PassThrough; the fill never waits for either.
import { PassThrough } from 'node:stream';
import type { BlobFill } from './fill.js';
import { FillSender } from './fill-sender.js';

/** Bytes buffered for a reader that has not taken them yet (the sender queues at most as much again). */
const CHUNK = 1024 * 1024;

export class FillReader extends PassThrough {
  /** Bytes handed to the stream so far (final once it has closed). */
  sent = 0;

  /** `release` comes from fill.acquire(), taken when the client joined, so the file cannot close under it. */
  constructor(fill: BlobFill, start: number, end: number, release: () => void) {
    super({ highWaterMark: CHUNK });
    new FillSender(fill, start, end, release, (sent) => { this.sent = sent; }).sendTo(this).then(
      () => this.end(),
      // A failed fill has destroyed the stream with its error already; a reader that went away needs nothing.
      (err: Error) => { if (!this.destroyed) this.destroy(err); },
    );
  }
}
