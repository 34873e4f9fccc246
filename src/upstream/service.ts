// The remote side of the RegistryService: every call goes through the fall-through of the mirror the route
// resolved (carried in the request). Manifests are buffered (≤ 4 MiB), checked against their digest, and a lying
// endpoint is skipped for the next one. Blob bodies go through the blob source (blob-source.ts) instead.
import type { Readable } from 'node:stream';
import { OciError, type ErrorCode } from '../oci/errors.js';
import { digestOf, algorithmOf } from '../oci/digest.js';
import { DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, knownManifestType, manifestMediaType } from '../oci/mediatypes.js';
import { isDigest } from '../oci/names.js';
import type { BlobRequest, BlobResult, ListRequest, ListResult, ManifestRequest, ManifestResult } from '../oci/service.js';
import { readCapped } from './capped-body.js';
import { AllEndpointsFailed, describeAttempt, headerValue, type Attempt, type MirrorUpstream, type UpstreamEndpoint } from './fallthrough.js';

/** The remote side: what the caching service asks upstream for (manifests, blob HEADs, lists). */
export class ProxyService {
  constructor(private readonly failureStatus: 503 | 504 | 404) {}

  async manifest(req: ManifestRequest<MirrorUpstream>): Promise<ManifestResult> {
    const { mirror } = req;
    const headers = { accept: req.accept || DEFAULT_MANIFEST_ACCEPT };
    const suffix = `/manifests/${req.ref}`;
    const skip = new Set<UpstreamEndpoint>();
    const attempts: Attempt[] = [];
    for (;;) {
      const { res, endpoint, attempts: tried } = await this.fetch(mirror, { method: req.method, repo: req.repo, suffix, headers, signal: req.signal, skip }, 'MANIFEST_UNKNOWN', attempts);
      attempts.push(...tried);
      const upstreamDigest = headerValue(res.headers, 'docker-content-digest');
      const contentType = headerValue(res.headers, 'content-type');
      const headType = knownManifestType(contentType);
      const length = Number(headerValue(res.headers, 'content-length'));
      if (req.method === 'HEAD' && upstreamDigest && isDigest(upstreamDigest) && Number.isFinite(length) && headType) {
        await res.body.dump().catch(() => undefined);
        // containerd resolves tags with HEAD: refuse an oversized manifest here too, not only on GET.
        if (length > MAX_MANIFEST_BYTES) throw new OciError('MANIFEST_INVALID', { limit: MAX_MANIFEST_BYTES, size: length }, { message: `manifest larger than ${MAX_MANIFEST_BYTES} bytes` });
        if (isDigest(req.ref) && upstreamDigest !== req.ref) { skip.add(endpoint); endpoint.health.recordFailure('HEAD digest mismatch'); continue; }
        return { digest: upstreamDigest, mediaType: headType, size: length, endpoint: endpoint.client.name, attempts };
      }
      if (req.method === 'HEAD') {
        // containerd falls back to GET when HEAD lacks digest or length; we do the GET for it (and for a HEAD whose
        // Content-Type is no manifest type: the bytes then decide).
        await res.body.dump().catch(() => undefined);
        const full = await this.manifest({ ...req, method: 'GET' });
        delete full.body;
        return full;
      }
      const body = await readLimited(res.body, MAX_MANIFEST_BYTES, length);
      const algorithm = isDigest(req.ref) ? algorithmOf(req.ref) : upstreamDigest?.startsWith('sha512:') ? 'sha512' : 'sha256';
      const digest = digestOf(body, algorithm);
      const expected = isDigest(req.ref) ? req.ref : upstreamDigest;
      if (expected && expected !== digest) {
        endpoint.health.recordFailure(`manifest digest mismatch (${expected})`);
        attempts[attempts.length - 1] = { ...attempts[attempts.length - 1] as Attempt, error: `manifest digest mismatch: expected ${expected}, got ${digest}` };
        skip.add(endpoint);
        continue;
      }
      return { digest, mediaType: manifestMediaType(body, contentType), size: body.length, body, endpoint: endpoint.client.name, attempts };
    }
  }

  /**
   * HEAD only: blob bodies are fetched by the cache's fills (src/cache/fill.ts), which verify and resume them. The
   * upstream's Content-Type is not passed on (blobs are application/octet-stream), and an endpoint that answers HEAD
   * without a usable Content-Length is asked for one byte, whose Content-Range names the size.
   */
  async blobHead(req: Omit<BlobRequest<MirrorUpstream>, 'method' | 'range'>): Promise<BlobResult> {
    const target = { repo: req.repo, suffix: `/blobs/${req.digest}`, ...(req.signal ? { signal: req.signal } : {}) };
    const head = await this.fetch(req.mirror, { ...target, method: 'HEAD', headers: {} }, 'BLOB_UNKNOWN');
    await head.res.body.dump().catch(() => undefined);
    let size = byteCount(headerValue(head.res.headers, 'content-length'));
    let answered = head;
    if (size === undefined) {
      answered = await this.fetch(req.mirror, { ...target, method: 'GET', headers: { range: 'bytes=0-0', 'accept-encoding': 'identity' } }, 'BLOB_UNKNOWN');
      await answered.res.body.dump().catch(() => undefined);
      const total = /^bytes \d+-\d+\/(\d+)$/.exec(headerValue(answered.res.headers, 'content-range') ?? '')?.[1];
      size = answered.res.status === 206 ? byteCount(total) : byteCount(headerValue(answered.res.headers, 'content-length'));
    }
    const attempts = answered === head ? head.attempts : [...head.attempts, ...answered.attempts];
    if (size === undefined) {
      throw new OciError('UNAVAILABLE', { registry: req.registry, attempts: attempts.map(describeAttempt) }, { status: this.failureStatus === 404 ? 503 : this.failureStatus, message: 'the upstream did not say how large this blob is' });
    }
    return { digest: req.digest, size, plan: { kind: 'head' }, endpoint: answered.endpoint.client.name, attempts };
  }

  async tags(req: ListRequest<MirrorUpstream>): Promise<ListResult> {
    return this.list(req, `/tags/list${req.query ? `?${req.query}` : ''}`, 'NAME_UNKNOWN');
  }

  async referrers(req: ListRequest<MirrorUpstream> & { digest: string }): Promise<ListResult> {
    return this.list(req, `/referrers/${req.digest}${req.query ? `?${req.query}` : ''}`, 'MANIFEST_UNKNOWN');
  }

  private async list(req: ListRequest<MirrorUpstream>, suffix: string, notFound: ErrorCode): Promise<ListResult> {
    const { res, endpoint, attempts } = await this.fetch(req.mirror, { method: 'GET', repo: req.repo, suffix, headers: { accept: 'application/json, application/vnd.oci.image.index.v1+json' }, signal: req.signal }, notFound);
    const body = await readLimited(res.body, MAX_MANIFEST_BYTES, Number(headerValue(res.headers, 'content-length')));
    const link = headerValue(res.headers, 'link');
    const filters = headerValue(res.headers, 'oci-filters-applied');
    return {
      body, contentType: headerValue(res.headers, 'content-type') ?? 'application/json', endpoint: endpoint.client.name, attempts,
      ...(link ? { link } : {}), ...(filters ? { filtersApplied: filters } : {}),
    };
  }

  /** Fall-through, with "every endpoint failed" turned into the OCI error a client should see. */
  private async fetch(mirror: MirrorUpstream, req: Parameters<MirrorUpstream['fetch']>[0], notFound: ErrorCode, earlier: Attempt[] = []) {
    try {
      return await mirror.fetch(req);
    } catch (err) {
      if (err instanceof AllEndpointsFailed) throw upstreamFailure(err, notFound, this.failureStatus, earlier);
      throw err;
    }
  }
}

/** 404 only when every endpoint said not-found; an outage is failureStatus (503 by default), never a silent 404. */
export function upstreamFailure(err: AllEndpointsFailed, notFound: ErrorCode, failureStatus: 503 | 504 | 404, earlier: Attempt[] = []): OciError {
  const attempts = [...earlier, ...err.attempts];
  const detail = { registry: err.registry, attempts: attempts.map(describeAttempt) };
  if (err.allNotFound && earlier.length === 0) return new OciError(notFound, detail, { cause: err });
  if (failureStatus === 404) return new OciError(notFound, detail, { cause: err, message: 'no endpoint could serve this (answering 404 for old containerd)' });
  if (attempts.length > 0 && attempts.every((a) => a.status === 429)) {
    return new OciError('TOOMANYREQUESTS', detail, { cause: err, message: `every endpoint of ${err.registry} is rate-limiting ocimirror` });
  }
  return new OciError('UNAVAILABLE', detail, { cause: err, status: failureStatus, message: `no upstream endpoint of ${err.registry} could serve the request` });
}


/** A header's non-negative integer byte count, or undefined ("", "abc", "-1", "1e3"). */
function byteCount(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,15}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

function readLimited(body: Readable, limit: number, declared?: number): Promise<Buffer> {
  return readCapped(body, limit, declared, (size) => new OciError('MANIFEST_INVALID', size === undefined ? { limit } : { limit, size }, { message: `manifest larger than ${limit} bytes` }));
}

/** An upstream outage (as opposed to "not found" or a bad request): a cached answer may then be served instead. */
export function isOutage(err: unknown): boolean {
  return err instanceof OciError && (err.status >= 500 || err.code === 'UNAVAILABLE' || (err.cause as { allNotFound?: boolean } | undefined)?.allNotFound === false);
}

/** Every endpoint said not-found: a 404 the negative cache may remember (never an outage). */
export function isNotFound(err: unknown): boolean {
  return err instanceof OciError && !isOutage(err) && (err.cause as { allNotFound?: boolean } | undefined)?.allNotFound === true;
}

/** Every attempt met a rate limit: a 429, or an endpoint not asked while its Retry-After runs. */
export function isRateLimited(err: unknown): boolean {
  const attempts = (err as { cause?: { attempts?: Attempt[] } } | undefined)?.cause?.attempts;
  return Array.isArray(attempts) && attempts.length > 0 && attempts.every((a) => a.status === 429);
}
