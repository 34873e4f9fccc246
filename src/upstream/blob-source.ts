// The upstream side of a blob fill: one transfer of one blob, across as many endpoints as it takes. The transfer
// owns fall-through order, endpoint health (including bodies that break off and bytes that fail the digest),
// placing each answer at the wanted offset (Range, or skipping bytes when an endpoint ignores it), agreement on
// the blob's size, and turning "no endpoint left" into the error a client gets. Its consumer only writes.
import { ResponseBody, BrokeOff, type BlobBody } from './blob-body.js';
import type { UpstreamResponse } from './client.js';
import { AllEndpointsFailed, errorText, headerValue, isResponseTimeout, type Attempt, type FetchResult, type MirrorUpstream, type UpstreamEndpoint } from './fallthrough.js';
import { upstreamFailure } from './service.js';

export interface BlobTransferRequest {
  mirror: MirrorUpstream;
  /** Repository as the client named it; each endpoint gets it after the mirror's rewrite rules. */
  repo: string;
  digest: string;
  /** Endpoints never to ask: a retry after a digest mismatch passes the failed transfer's `excluded`. */
  exclude?: ReadonlySet<UpstreamEndpoint>;
  /** Aborts the transfer (the fill's timeout, shutdown); an abort never counts against an endpoint. */
  signal?: AbortSignal;
}

export interface OpenedBlob {
  /** The blob's total size, when an endpoint said (Content-Length of a 200, or the total of a Content-Range). */
  size: number | undefined;
  /** Offset of the first byte `body` delivers: always the offset asked for. */
  start: number;
  /** Name of the endpoint that answered (logs, metrics). */
  endpoint: string;
  /** Attempts this open made, the answering one last. */
  attempts: readonly Attempt[];
  body: BlobBody;
  /** The bytes did not match the digest: counts against the endpoint, which this transfer never asks again. */
  reportCorrupt(): void;
}

export interface BlobTransfer {
  /**
   * The blob from `offset` on, from the first endpoint (healthy first, in configured order) that is not excluded
   * and answers with bytes that can be placed there; a Content-Range that starts elsewhere, or a size that
   * contradicts what an earlier endpoint said, moves on to the next. Rejects with an OciError when none is left:
   * 404 BLOB_UNKNOWN only when every endpoint of a first attempt said not-found, else upstream.failureStatus.
   */
  open(offset: number): Promise<OpenedBlob>;
  /** Every attempt so far, failed ones included (one array for the whole transfer). */
  readonly attempts: readonly Attempt[];
  /** Endpoints this transfer will not ask again. */
  readonly excluded: ReadonlySet<UpstreamEndpoint>;
}

export interface BlobSource {
  /** Starts one transfer; nothing is asked upstream before open(). */
  transfer(req: BlobTransferRequest): BlobTransfer;
}

/** The blob source over the configured mirrors' endpoints. */
export class UpstreamBlobSource implements BlobSource {
  constructor(private readonly failureStatus: 503 | 504 | 404) {}

  transfer(req: BlobTransferRequest): BlobTransfer {
    return new MirrorBlobTransfer(req, this.failureStatus);
  }
}

class MirrorBlobTransfer implements BlobTransfer {
  readonly attempts: Attempt[] = [];
  private readonly skip: Set<UpstreamEndpoint>;
  private size: number | undefined;

  constructor(private readonly req: BlobTransferRequest, private readonly failureStatus: 503 | 504 | 404) {
    this.skip = new Set(req.exclude ?? []);
  }

  get excluded(): ReadonlySet<UpstreamEndpoint> {
    return this.skip;
  }

  async open(offset: number): Promise<OpenedBlob> {
    const { mirror, repo, digest, signal } = this.req;
    const mark = this.attempts.length;
    for (;;) {
      let fetched: FetchResult;
      try {
        fetched = await mirror.fetch({
          method: 'GET', repo, suffix: `/blobs/${digest}`, skip: this.skip, ...(signal ? { signal } : {}),
          headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
        });
      } catch (err) {
        // Earlier attempts of this transfer make a final "every endpoint said 404" an outage, not a 404.
        if (err instanceof AllEndpointsFailed) throw upstreamFailure(err, 'BLOB_UNKNOWN', this.failureStatus, this.attempts);
        throw err;
      }
      const { res, endpoint } = fetched;
      this.attempts.push(...fetched.attempts);
      const skip = this.place(res, offset);
      if (typeof skip === 'string') {
        // This endpoint's bytes cannot be placed after ours: never mix them in.
        await res.body.dump().catch(() => undefined);
        const last = this.attempts.length - 1;
        this.attempts[last] = { ...(this.attempts[last] as Attempt), error: skip };
        this.skip.add(endpoint);
        continue;
      }
      return {
        size: this.size, start: offset, endpoint: endpoint.client.name, attempts: this.attempts.slice(mark),
        body: new ResponseBody(res.body, offset, skip, this.size, signal, (at, err) => this.brokeOff(endpoint, at, err)),
        reportCorrupt: () => {
          endpoint.health.recordFailure('blob digest mismatch');
          this.skip.add(endpoint);
        },
      };
    }
  }

  /** How many leading bytes of this answer to drop to start at `offset`, or why it cannot be used. */
  private place(res: UpstreamResponse, offset: number): number | string {
    if (res.status === 206) {
      const range = headerValue(res.headers, 'content-range');
      const m = range ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range) : null;
      if (!m || Number(m[1]) !== offset) return `Content-Range ${range ?? '(none)'} does not start at byte ${offset}`;
      if (m[3] !== '*' && !this.agrees(Number(m[3]))) return `size ${m[3]} contradicts ${this.size}`;
      return 0;
    }
    // The whole blob: the first request, or an endpoint that ignored Range (we drop what we already have).
    const length = Number(headerValue(res.headers, 'content-length'));
    if (Number.isFinite(length) && !this.agrees(length)) return `size ${length} contradicts ${this.size}`;
    return offset;
  }

  /** Records the blob's size; false when it contradicts the size an earlier endpoint gave. */
  private agrees(size: number): boolean {
    this.size ??= size;
    return this.size === size;
  }

  private brokeOff(endpoint: UpstreamEndpoint, at: number, err: unknown): BrokeOff {
    const reason = errorText(err);
    // A body that stalls may be this blob's trouble alone (EndpointHealth checks /v2/); a reset is the endpoint's.
    if (isResponseTimeout(err)) void endpoint.health.recordRequestFailure(`/${this.req.repo}/blobs/${this.req.digest}`, reason);
    else endpoint.health.recordFailure(reason);
    this.skip.add(endpoint);
    this.attempts.push({ endpoint: endpoint.client.name, error: `broke off at byte ${at}: ${reason}`, ms: 0 });
    return new BrokeOff(endpoint.client.name, at, reason, { cause: err });
  }
}
