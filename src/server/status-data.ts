// What the status page shows, as one JSON document (GET /status.json): built from a narrow StatusSource that
// start.ts implements over the upstreams, the cache and the metrics counters. Never carries credentials: endpoints
// are named by origin and API root only, and error texts pass through redactUserinfo.

export interface EndpointStatus {
  name: string;
  state: 'up' | 'down';
  /** Epoch ms when a down endpoint is due for its next probe. */
  nextProbeAt?: number;
  lastError?: string;
  requests: number;
  failures: number;
}

export interface RegistryStatus {
  registry: string;
  /** In the order they are tried. */
  endpoints: EndpointStatus[];
  requests: number;
  failures: number;
}

export interface CacheStatus {
  bytes: number;
  maxSize: number;
  entries: number;
  hits: number;
  misses: number;
  bytesFromCache: number;
  bytesFromUpstream: number;
}

export interface FillStatus {
  digest: string;
  repo: string;
  size?: number;
  written: number;
  startedAt: number;
  clients: number;
  endpoint?: string;
}

export interface PullRecord {
  at: number;
  /** registry/repo:tag or registry/repo@digest */
  image: string;
  client: string;
  cache: 'hit' | 'miss' | 'stale' | 'joined' | 'error';
  status: number;
}

/** An endpoint's announced rate limit (upstream/rate-limit.ts's snapshot); times are epoch ms. */
export interface RateLimitStatus {
  endpoint: string;
  limit?: number;
  remaining?: number;
  resetAt?: number;
  /** After a 429 with Retry-After: the endpoint is not asked until then. */
  retryAfterUntil?: number;
}

/** Everything the status page reads; each part is owned elsewhere and read when the page asks. */
export interface StatusSource {
  registries(): Promise<RegistryStatus[]>;
  cache(): CacheStatus;
  fills(): FillStatus[];
  recentPulls(): PullRecord[];
  /** Docker Hub's rate-limit headroom per endpoint, once an endpoint has reported it. */
  rateLimits?(): RateLimitStatus[];
  now?(): number;
}

export interface StatusSnapshot {
  now: number;
  registries: RegistryStatus[];
  cache: CacheStatus & { hitRatio: number | null };
  fills: (FillStatus & { bytesPerSecond: number })[];
  pulls: PullRecord[];
  rateLimits: RateLimitStatus[];
}

/** user:password@ inside a URL in an error text (an upstream or a library may echo the URL it was given). */
export function redactUserinfo(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1[redacted]@');
}

export async function statusSnapshot(src: StatusSource): Promise<StatusSnapshot> {
  const now = src.now?.() ?? Date.now();
  const cache = src.cache();
  const lookups = cache.hits + cache.misses;
  const registries = (await src.registries()).map((r) => ({
    ...r,
    endpoints: r.endpoints.map((e) => ({ ...e, ...(e.lastError !== undefined ? { lastError: redactUserinfo(e.lastError) } : {}) })),
  }));
  return {
    now,
    registries,
    cache: { ...cache, hitRatio: lookups > 0 ? cache.hits / lookups : null },
    fills: src.fills().map((f) => ({ ...f, bytesPerSecond: now > f.startedAt ? Math.round((f.written * 1000) / (now - f.startedAt)) : 0 })),
    pulls: src.recentPulls(),
    rateLimits: src.rateLimits?.() ?? [],
  };
}

/** The last `max` pulls, newest first; a fixed-size ring, so a flood of requests costs no memory. */
export class RecentPulls {
  private readonly ring: PullRecord[] = [];
  private next = 0;

  constructor(private readonly max = 50) {}

  add(pull: PullRecord): void {
    if (this.ring.length < this.max) this.ring.push(pull);
    else this.ring[this.next] = pull;
    this.next = (this.next + 1) % this.max;
  }

  list(): PullRecord[] {
    const oldestFirst = this.ring.length < this.max ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return [...oldestFirst].reverse();
  }
}
