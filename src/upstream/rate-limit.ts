// Upstream rate limits as Docker Hub announces them on every response (`ratelimit-limit: 100;w=21600`,
// `ratelimit-remaining: 76;w=21600`, `docker-ratelimit-source`), and 429's Retry-After. Per endpoint: below the
// threshold cached tags are not revalidated until the window resets; after a 429 with Retry-After the endpoint is
// not asked at all until then.
import type { Logger } from 'pino';
import type { RateLimitThreshold } from '../config/schema.js';
import type { Headers } from './client.js';
import { headerValue } from './fallthrough.js';

export interface Quota { count: number; windowSeconds?: number }

export interface RateLimitObservation {
  limit?: Quota;
  remaining: Quota;
  /** Seconds until the window resets (`w=` of remaining or limit, else `ratelimit-reset`). */
  windowSeconds?: number;
  /** Who the upstream counts the requests against (Docker Hub: the client IP or account). */
  source?: string;
}

/** What the status page and /metrics show per endpoint; `resetAt` and `retryAfterUntil` are ms since the epoch. */
export interface RateLimitSnapshot {
  endpoint: string;
  limit?: number;
  remaining?: number;
  resetAt?: number;
  retryAfterUntil?: number;
  source?: string;
}

const MAX_COUNT = 2 ** 31;
/** A hostile or broken upstream must not park an endpoint for longer than this. */
const MAX_WAIT_S = 24 * 3600;
/** A window of unknown length is assumed to be this long (the draft RFC's advice for a missing reset). */
const DEFAULT_WINDOW_S = 60;

/** `100;w=21600` → {count: 100, windowSeconds: 21600}; a list ("10, 10;w=1") gives its first item; junk → undefined. */
export function parseQuota(value: string | undefined): Quota | undefined {
  if (value === undefined) return undefined;
  const [first = ''] = value.split(',');
  const [count = '', ...params] = first.split(';').map((p) => p.trim());
  if (!/^\d{1,10}$/.test(count) || Number(count) > MAX_COUNT) return undefined;
  const quota: Quota = { count: Number(count) };
  for (const p of params) {
    const m = /^w\s*=\s*(\d{1,10})$/i.exec(p);
    if (m && Number(m[1]) > 0 && Number(m[1]) <= MAX_WAIT_S) quota.windowSeconds = Number(m[1]);
  }
  return quota;
}

/** The rate-limit headers of one response, or undefined when it carries no usable `ratelimit-remaining`. */
export function parseRateLimit(headers: Headers): RateLimitObservation | undefined {
  const remaining = parseQuota(headerValue(headers, 'ratelimit-remaining'));
  if (!remaining) return undefined;
  const limit = parseQuota(headerValue(headers, 'ratelimit-limit'));
  const reset = parseQuota(headerValue(headers, 'ratelimit-reset'));
  const windowSeconds = remaining.windowSeconds ?? limit?.windowSeconds ?? (reset && reset.count > 0 && reset.count <= MAX_WAIT_S ? reset.count : undefined);
  const source = headerValue(headers, 'docker-ratelimit-source')?.trim();
  return {
    remaining, ...(limit ? { limit } : {}), ...(windowSeconds !== undefined ? { windowSeconds } : {}),
    ...(source && /^[\x21-\x7e]{1,100}$/.test(source) ? { source } : {}),
  };
}

/** Retry-After as delta-seconds or an HTTP-date → the time (ms) to wait until, capped; undefined when absent or junk. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let until: number;
  if (/^\d{1,10}$/.test(v)) until = nowMs + Number(v) * 1000;
  else if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) until = Date.parse(v);
  else return undefined;
  if (!Number.isFinite(until)) return undefined;
  return Math.min(Math.max(until, nowMs), nowMs + MAX_WAIT_S * 1000);
}

export class EndpointRateLimit {
  private limit: number | undefined;
  private remaining: number | undefined;
  private source: string | undefined;
  private resetAt = 0;
  private retryUntil = 0;
  /** The low state (or back-off) already logged for this window: once, not per request. */
  private loggedLowUntil = 0;
  private loggedRetryUntil = 0;

  constructor(
    readonly endpoint: string,
    private readonly threshold: RateLimitThreshold,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every upstream response passes here once. */
  observe(status: number, headers: Headers): void {
    const now = this.now();
    const seen = parseRateLimit(headers);
    if (seen) {
      this.remaining = seen.remaining.count;
      if (seen.limit) this.limit = seen.limit.count;
      if (seen.source) this.source = seen.source;
      this.resetAt = now + (seen.windowSeconds ?? DEFAULT_WINDOW_S) * 1000;
      if (this.isLow() && this.loggedLowUntil <= now) {
        this.loggedLowUntil = this.resetAt;
        this.log.warn({ endpoint: this.endpoint, remaining: this.remaining, limit: this.limit, source: this.source, resetAt: new Date(this.resetAt).toISOString() },
          'upstream rate limit nearly used up; cached tags are served without revalidation until its window resets');
      }
    }
    if (status === 429) {
      const until = parseRetryAfter(headerValue(headers, 'retry-after'), now);
      if (until !== undefined && until > this.retryUntil) this.retryUntil = until;
      if (this.retryUntil > now && this.loggedRetryUntil < this.retryUntil) {
        this.loggedRetryUntil = this.retryUntil;
        this.log.warn({ endpoint: this.endpoint, until: new Date(this.retryUntil).toISOString() }, 'upstream answered 429; not asking it again before Retry-After');
      }
    }
  }

  /** Remaining requests are below the threshold and the window they were counted in has not reset. */
  isLow(): boolean {
    if (this.remaining === undefined || this.now() >= this.resetAt) return false;
    return this.remaining < this.thresholdCount();
  }

  /** A 429's Retry-After has not passed: no request may go to this endpoint. */
  isBackingOff(): boolean {
    return this.now() < this.retryUntil;
  }

  snapshot(): RateLimitSnapshot {
    const now = this.now();
    return {
      endpoint: this.endpoint,
      ...(this.limit !== undefined ? { limit: this.limit } : {}),
      ...(this.remaining !== undefined ? { remaining: this.remaining, resetAt: this.resetAt } : {}),
      ...(this.retryUntil > now ? { retryAfterUntil: this.retryUntil } : {}),
      ...(this.source ? { source: this.source } : {}),
    };
  }

  /** True once the endpoint announced a limit or sent a Retry-After (endpoints that never did are not listed). */
  get known(): boolean {
    return this.remaining !== undefined || this.retryUntil > 0;
  }

  private thresholdCount(): number {
    if ('count' in this.threshold) return this.threshold.count;
    // Without a limit to take a percentage of, only an exhausted quota counts as low.
    return this.limit === undefined ? 1 : (this.limit * this.threshold.percent) / 100;
  }
}
