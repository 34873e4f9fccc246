// One mirror: its ordered endpoints, tried healthy-first in configured order; falls through on transport errors,
// timeouts, 5xx, 429, 401/403 after an auth attempt and 404, and says why when every endpoint failed.
import { RE2JS } from 're2js';
import type { EndpointClient, Headers, UpstreamResponse } from './client.js';
import type { EndpointHealth } from './health.js';
import type { EndpointRateLimit, RateLimitSnapshot } from './rate-limit.js';

export interface UpstreamEndpoint {
  readonly client: EndpointClient;
  readonly health: EndpointHealth;
  /** K3s applies a mirror's rewrite rules to its listed endpoints, not to the registry's own default one. */
  readonly rewrites: boolean;
  /** The rate limit the endpoint announces (absent in unit tests that build endpoints by hand). */
  readonly rateLimit?: EndpointRateLimit;
}

export interface Attempt {
  endpoint: string;
  status?: number;
  error?: string;
  ms: number;
  /** Not sent: the endpoint's Retry-After has not passed (no request to count). */
  skipped?: true;
}

export type Outcome = 'ok' | 'not-found' | 'failed';

export class AllEndpointsFailed extends Error {
  override readonly name = 'AllEndpointsFailed';
  constructor(readonly registry: string, readonly attempts: Attempt[], readonly allNotFound: boolean) {
    super(`every endpoint of ${registry} failed: ${attempts.map(describeAttempt).join('; ')}`);
  }
}

export function describeAttempt(a: Attempt): string {
  return `${a.endpoint}: ${a.error ?? `HTTP ${a.status}`}`;
}

export interface FetchResult {
  res: UpstreamResponse;
  endpoint: UpstreamEndpoint;
  attempts: Attempt[];
}

export interface FetchRequest {
  method: 'GET' | 'HEAD';
  repo: string;
  /** Path after the repository: "/manifests/<ref>", "/blobs/<digest>", "/tags/list?n=10". */
  suffix: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Endpoints already tried for this transfer (a resumed fill starts after them). */
  skip?: ReadonlySet<UpstreamEndpoint>;
}

interface RewriteRule { re: RE2JS; replacement: string }

export class MirrorUpstream {
  private readonly rules: RewriteRule[];

  constructor(readonly registry: string, readonly endpoints: readonly UpstreamEndpoint[], rewrite: Readonly<Record<string, string>>) {
    this.rules = Object.entries(rewrite).map(([pattern, replacement]) => ({ re: RE2JS.compile(pattern), replacement }));
  }

  /** Healthy endpoints first, then the ones down or suspect (EndpointHealth.triedLast), each group in configured order. */
  ordered(): UpstreamEndpoint[] {
    const now = Date.now();
    return [...this.endpoints.filter((e) => !e.health.triedLast(now)), ...this.endpoints.filter((e) => e.health.triedLast(now))];
  }

  /** The repository path an endpoint is asked for (after this mirror's rewrite rules, for its listed endpoints). */
  repoFor(endpoint: UpstreamEndpoint, repo: string): string {
    if (!endpoint.rewrites) return repo;
    for (const { re, replacement } of this.rules) {
      if (re.matcher(repo).find()) return re.matcher(repo).replaceAll(replacement);
    }
    return repo;
  }

  /**
   * The rate limit that stops revalidating cached tags now: that of the endpoint a request would reach first
   * (endpoints waiting for a Retry-After are passed over, as fetch passes them), or a Retry-After when all wait.
   */
  rateLimitHold(): RateLimitSnapshot | undefined {
    let waiting: RateLimitSnapshot | undefined;
    for (const e of this.ordered()) {
      if (e.rateLimit?.isBackingOff()) { waiting ??= e.rateLimit.snapshot(); continue; }
      return e.rateLimit?.isLow() ? e.rateLimit.snapshot() : undefined;
    }
    return waiting;
  }

  async fetch(req: FetchRequest): Promise<FetchResult> {
    const attempts: Attempt[] = [];
    let allNotFound = true;
    for (const endpoint of this.ordered()) {
      if (req.skip?.has(endpoint)) continue;
      if (endpoint.rateLimit?.isBackingOff()) {
        attempts.push({ endpoint: endpoint.client.name, status: 429, error: 'not asked: waiting for its Retry-After', ms: 0, skipped: true });
        allNotFound = false;
        continue;
      }
      const started = Date.now();
      const path = `/${this.repoFor(endpoint, req.repo)}${req.suffix}`;
      let res: UpstreamResponse;
      try {
        res = await endpoint.client.request(req.method, path, req.headers, scopeFor(endpoint, this.repoFor(endpoint, req.repo)), req.signal);
      } catch (err) {
        if (req.signal?.aborted) throw err;
        const error = errorText(err);
        attempts.push({ endpoint: endpoint.client.name, error, ms: Date.now() - started });
        if (isTransportError(err)) endpoint.health.recordFailure(error);
        else if (isResponseTimeout(err)) void endpoint.health.recordRequestFailure(path, error);
        allNotFound = false;
        continue;
      }
      endpoint.rateLimit?.observe(res.status, res.headers);
      const attempt: Attempt = { endpoint: endpoint.client.name, status: res.status, ms: Date.now() - started };
      attempts.push(attempt);
      const outcome = classify(res);
      if (outcome === 'ok') {
        endpoint.health.recordSuccess();
        return { res, endpoint, attempts };
      }
      await res.body.dump().catch(() => undefined);
      // A 5xx may be this request's own doing: the endpoint's /v2/ decides (EndpointHealth).
      if (res.status >= 500) void endpoint.health.recordRequestFailure(path, `HTTP ${res.status}`);
      if (outcome !== 'not-found') allNotFound = false;
    }
    throw new AllEndpointsFailed(this.registry, attempts, allNotFound && attempts.length > 0);
  }
}

export function classify(res: { status: number }): Outcome {
  if (res.status >= 200 && res.status < 300) return 'ok';
  if (res.status === 404) return 'not-found';
  return 'failed';
}

const TRANSPORT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);
const RESPONSE_TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function codesOf(err: unknown): string[] {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return [e?.code ?? '', e?.cause?.code ?? ''];
}

/** Connection-level trouble (as opposed to a token server refusing us): counts against the endpoint's health. */
export function isTransportError(err: unknown): boolean {
  const e = err as { name?: string };
  if (e?.name === 'TokenError' || e?.name === 'PrivateAddressError') return false;
  return codesOf(err).some((c) => TRANSPORT_CODES.has(c)) || (err instanceof Error && /certificate|TLS|SSL/i.test(err.message));
}

/** An endpoint that connected but was slow to answer this request: maybe the request's doing, so only a suspicion. */
export function isResponseTimeout(err: unknown): boolean {
  return codesOf(err).some((c) => RESPONSE_TIMEOUT_CODES.has(c));
}

/** A one-line reason without secrets: undici errors carry no headers, so code + message is safe. */
export function errorText(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const msg = e?.message || e?.cause?.message || String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

export function headerValue(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The token scope names the repository as the endpoint sees it: for an API root like /v2/dockerhub (a Harbor
 * proxy-cache project) that is "dockerhub/<repo>".
 */
export function scopeFor(endpoint: UpstreamEndpoint, repo: string): string {
  const root = endpoint.client.endpoint.apiRoot;
  const prefix = root.startsWith('/v2/') ? `${root.slice(4).replace(/^\/+|\/+$/g, '')}/` : '';
  return `repository:${prefix}${repo}:pull`;
}
