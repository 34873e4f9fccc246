// Rate-limit awareness against the fault upstream's Docker Hub mode (ratelimit-limit / ratelimit-remaining, counted
// down per manifest GET): below 10% of the limit cached tags are served without revalidation (0 upstream HEADs,
// Warning 110, logged once) until the window passes, and /metrics shows the headroom; an endpoint that answered
// 429 with Retry-After is not asked again before it. Time is a test clock.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, pullThrough, startTestProxy, testClock, type TestClock, type TestProxy } from '../helpers/proxy.js';

const SECOND = 1000;
const started: { close(): Promise<void> }[] = [];
afterEach(async () => { await Promise.all(started.splice(0).map((s) => s.close())); });
afterAll(async () => { await Promise.all(started.map((s) => s.close())); });

async function upstreamWith(img: BuiltImage, tags: string[]): Promise<FaultUpstream> {
  const up = await startFaultUpstream();
  started.push(up);
  for (const tag of tags) up.add('library/app', tag, img);
  return up;
}
async function proxy(endpoints: string[], clock: TestClock): Promise<TestProxy> {
  const p = await startTestProxy({ mirrors: { 'docker.io': { endpoint: endpoints } }, cache: { tagTtl: '60s' } }, { clock });
  started.push(p);
  return p;
}
async function metricsText(p: TestProxy): Promise<string> {
  return (await fetchFrom(p.url, '/metrics')).body.toString('utf8');
}
const gauge = (text: string, name: string, endpoint: string) => Number(new RegExp(`^${name}\\{endpoint="${endpoint.replace(/[.]/g, '\\.')}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
const tag = (p: TestProxy, t: string) => `${p.url}/v2/library/app/manifests/${t}`;

describe('ratelimit-remaining below the threshold', () => {
  it('stops revalidation (0 upstream HEADs) until the window passes; the metric shows the headroom', async () => {
    const img = await buildImage({ format: 'oci', label: 'rate limits' });
    const up = await upstreamWith(img, ['a', 'b', 'c']);
    up.rateLimit({ limit: 100, remaining: 11, windowSeconds: 3600 });
    const clock = testClock();
    const p = await proxy([up.url], clock);

    expect((await fetchFrom(tag(p, 'a'), '')).status).toBe(200); // a GET: 10 left, not below 10% of 100
    expect((await fetchFrom(tag(p, 'b'), '')).status).toBe(200); // 9 left: below
    expect(up.remaining).toBe(9);
    let text = await metricsText(p);
    expect(gauge(text, 'ocimirror_upstream_ratelimit_remaining', up.url)).toBe(9);
    expect(gauge(text, 'ocimirror_upstream_ratelimit_limit', up.url)).toBe(100);
    expect(p.warnings(/rate limit nearly used up/)).toHaveLength(1);
    expect(p.warnings(/rate limit nearly used up/)[0]).toMatchObject({ remaining: 9, limit: 100, source: '127.0.0.1' });

    clock.advance(61 * SECOND);
    const before = up.requests().length;
    for (const t of ['a', 'b']) {
      const got = await fetchFrom(tag(p, t), '');
      expect(got.status).toBe(200);
      expect(got.body.equals(img.manifest)).toBe(true);
      expect(got.headers.warning).toBe('110 ocimirror "Response is Stale: upstream rate limit reached or nearly used up; age 61s"');
      expect((await fetchFrom(tag(p, t), '', { method: 'HEAD' })).headers.warning).toMatch(/^110 /);
    }
    expect((await pullThrough(p.url, 'library/app', 'a')).digest).toBe(img.manifestDigest);
    expect(up.requests().slice(before).filter((r) => r.path.includes('/manifests/'))).toEqual([]);
    expect(/^ocimirror_cache_stale_served_total\{reason="ratelimit"\} 5$/m.test(await metricsText(p))).toBe(true);

    // What is not cached still has to come from upstream, and its answer refreshes the window.
    expect((await fetchFrom(tag(p, 'c'), '')).status).toBe(200);
    expect(up.remaining).toBe(8);
    expect(p.warnings(/rate limit nearly used up/)).toHaveLength(1);

    clock.advance(3599 * SECOND);
    expect(up.count('HEAD', /\/manifests\/a$/)).toBe(0);
    expect((await fetchFrom(tag(p, 'a'), '')).headers.warning).toMatch(/rate limit/);
    expect(up.count('HEAD', /\/manifests\/a$/)).toBe(0);

    // The window passes (upstream's resets too): revalidation resumes with HEAD, free of the limit.
    clock.advance(SECOND);
    up.rateLimit({ limit: 100, windowSeconds: 3600 });
    const fresh = await fetchFrom(tag(p, 'a'), '');
    expect(fresh.status).toBe(200);
    expect(fresh.headers.warning).toBeUndefined();
    expect(up.count('HEAD', /\/manifests\/a$/)).toBe(1);
    expect(up.remaining).toBe(100);
    text = await metricsText(p);
    expect(gauge(text, 'ocimirror_upstream_ratelimit_remaining', up.url)).toBe(100);
    expect(p.proxy.upstreams.rateLimits()).toEqual([{ endpoint: up.url, limit: 100, remaining: 100, resetAt: clock.now() + 3600 * SECOND, source: '127.0.0.1' }]);
  });
});

describe('429 with Retry-After', () => {
  it('that endpoint is not asked again before Retry-After: requests go to the next one, and back after it', async () => {
    const img = await buildImage({ format: 'docker', label: 'retry after' });
    const first = await upstreamWith(img, ['x', 'y', 'z']);
    const second = await upstreamWith(img, ['x', 'y', 'z']);
    first.fault({ method: 'GET', path: /\/manifests\/x$/ }, { kind: 'status', status: 429, headers: { 'retry-after': '120' } }, 1);
    const clock = testClock();
    const p = await proxy([first.url, second.url], clock);

    const got = await fetchFrom(tag(p, 'x'), '');
    expect(got.status).toBe(200);
    expect(got.body.equals(img.manifest)).toBe(true);
    expect(first.requests().map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v2/library/app/manifests/x']);
    expect(second.count('GET', /\/manifests\/x$/)).toBe(1);
    expect(p.warnings(/not asking it again before Retry-After/)).toHaveLength(1);
    const asked = first.requests().length;

    clock.advance(119 * SECOND);
    expect((await pullThrough(p.url, 'library/app', 'y')).digest).toBe(img.manifestDigest);
    expect(first.requests().length).toBe(asked);
    expect(second.count('HEAD', /\/manifests\/y$/)).toBe(1);
    const metrics = await metricsText(p);
    expect(metrics).toContain(`ocimirror_upstream_requests_total{endpoint="${first.url}",status="429"} 1`);

    clock.advance(SECOND);
    expect((await pullThrough(p.url, 'library/app', 'z')).digest).toBe(img.manifestDigest);
    expect(first.count('HEAD', /\/manifests\/z$/)).toBe(1);
  });
});
