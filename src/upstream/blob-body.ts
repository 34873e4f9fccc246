// How an opened blob's bytes reach its consumer: pushed into a sink the consumer hands over, never pulled. The
// loop that pushes lives here, so the transport under it (today undici's body stream; later a stream()/dispatch()
// handler writing chunks straight into the sink) can change without the consumer noticing.
import type { UpstreamResponse } from './client.js';

/** Where the bytes of an opened blob go. */
export interface BlobSink {
  /**
   * Takes the next chunk, which the source never reuses (the sink may keep it). A returned promise is backpressure:
   * nothing more is pushed until it settles; a rejection (a local failure) stops the transfer with that very error,
   * which is never blamed on the endpoint. Returning nothing means "go on" without a wake-up per chunk.
   */
  write(chunk: Buffer): Promise<void> | undefined;
}

/** An endpoint's body, placed at the offset the consumer asked for. */
export interface BlobBody {
  /**
   * Pushes every byte from the opened offset to the blob's end into `sink` (exactly size - offset bytes when the
   * size is known). Call once. Resolves when all were pushed; rejects with the sink's own error, with the transfer's
   * abort reason, or with BrokeOff — the endpoint broke off, stalled past upstream.readTimeout, or sent more or
   * fewer bytes than it said — which is already counted against the endpoint and excludes it from the transfer.
   */
  pipeTo(sink: BlobSink): Promise<void>;
}

/** The endpoint stopped delivering mid-body; the transfer resumes elsewhere from `at`. */
export class BrokeOff extends Error {
  override readonly name = 'BrokeOff';
  constructor(readonly endpoint: string, readonly at: number, readonly reason: string, opts: { cause: unknown }) {
    super(`${endpoint} broke off at byte ${at}: ${reason}`, opts);
  }
}

/** Drops `skip` leading bytes (an endpoint that ignored Range) and checks the length against the known size. */
export class ResponseBody implements BlobBody {
  private used = false;

  constructor(
    private readonly body: UpstreamResponse['body'],
    private readonly start: number,
    private readonly skip: number,
    private readonly size: number | undefined,
    private readonly signal: AbortSignal | undefined,
    /** Records the failure against the endpoint and says why, as the error to reject with. */
    private readonly brokeOff: (at: number, err: unknown) => BrokeOff,
  ) {}

  async pipeTo(sink: BlobSink): Promise<void> {
    if (this.used) throw new Error('an opened blob body can be piped once');
    this.used = true;
    const size = this.size;
    let skip = this.skip;
    let at = this.start;
    // Set while the sink holds the chunk: an error then is the sink's, not the endpoint's.
    let inSink = false;
    try {
      for await (const chunk of this.body as AsyncIterable<Buffer>) {
        let c = chunk;
        if (skip > 0) {
          const n = Math.min(skip, c.length);
          skip -= n;
          c = c.subarray(n);
          if (c.length === 0) continue;
        }
        if (size !== undefined && at + c.length > size) throw new Error('upstream sent more bytes than its Content-Length');
        at += c.length;
        inSink = true;
        const wait = sink.write(c);
        if (wait) await wait;
        inSink = false;
      }
      if (skip > 0) throw new Error(`body ended before byte ${this.start}`);
      if (size !== undefined && at < size) throw new Error(`body ended after ${at} of ${size} bytes`);
    } catch (err) {
      this.body.destroy();
      if (inSink) throw err;
      if (this.signal?.aborted) throw this.signal.reason;
      throw this.brokeOff(at, err);
    }
  }
}
