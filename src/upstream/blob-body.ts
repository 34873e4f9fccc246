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

  /**
   * Plain 'data' events rather than an async iterator: each chunk goes into the sink in the same tick it arrives,
   * without a promise per chunk; the body is paused only while a promise the sink returned is pending.
   */
  pipeTo(sink: BlobSink): Promise<void> {
    if (this.used) return Promise.reject(new Error('an opened blob body can be piped once'));
    this.used = true;
    const { body, size, start } = this;
    let skip = this.skip;
    let at = start;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      /** Ends the transfer; an error from the sink is its own, anything else is the endpoint's or the abort's. */
      const stop = (err: unknown, fromSink: boolean) => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        body.destroy();
        if (fromSink) reject(err);
        else if (this.signal?.aborted) reject(this.signal.reason);
        else reject(this.brokeOff(at, err));
      };
      const onData = (chunk: Buffer) => {
        let c = chunk;
        if (skip > 0) {
          const n = Math.min(skip, c.length);
          skip -= n;
          if (n === c.length) return;
          c = c.subarray(n);
        }
        if (size !== undefined && at + c.length > size) return stop(new Error('upstream sent more bytes than its Content-Length'), false);
        at += c.length;
        let wait: Promise<void> | undefined;
        try {
          wait = sink.write(c);
        } catch (err) {
          return stop(err, true);
        }
        if (wait) {
          body.pause();
          wait.then(() => { if (!settled) body.resume(); }, (err: unknown) => stop(err, true));
        }
      };
      body.on('data', onData);
      body.once('error', (err: Error) => stop(err, false));
      body.once('close', () => stop(new Error('upstream body closed before its end'), false));
      body.once('end', () => {
        if (skip > 0) return stop(new Error(`body ended before byte ${start}`), false);
        if (size !== undefined && at < size) return stop(new Error(`body ended after ${at} of ${size} bytes`), false);
        settled = true;
        resolve();
      });
    });
  }
}
