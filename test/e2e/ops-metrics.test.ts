// /metrics, /healthz and /readyz of a real listening proxy in front of a real Distribution: pull an image twice
// and check that miss/hit and bytes-from-upstream/bytes-from-cache moved as they should, that the upstream request
// counter matches Distribution's own access log, and that readiness follows the endpoint's health.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_ENTRY_MAX } from '../../src/cache/memory-store.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { waitFor } from '../helpers/eventually.js';

let dist: Distribution;
let proxy: TestProxy;
let image: BuiltImage;

beforeAll(async () => {
  image = await buildImage({ format: 'oci', label: 'ops metrics' });
  dist = await startDistribution();
  await pushImage(dist.url, 'library/metered', '1.0', image);
  // From here on the access log holds only what the proxy asked for.
  await dist.flushLog();
  dist.resetLog();
  // Short cooldown and probe interval: the readiness test waits for the probe to close the circuit again.
  proxy = await startTestProxy({
    upstream: { health: { cooldown: '200ms', probeInterval: '100ms' } },
    mirrors: { 'docker.io': { endpoint: [dist.url] } },
  });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), dist?.close()]);
});

async function scrape(): Promise<(series: string) => number> {
  const res = await fetchFrom(proxy.url, '/metrics');
  expect(res.status).toBe(200);
  const text = res.body.toString('utf8');
  return (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  };
}

const up = (s: string) => `{endpoint="${s}"`;

describe('metrics after pulling an image twice', () => {
  it('first pull: blob misses and bytes from upstream; second pull: hits and bytes from cache, nothing upstream', async () => {
    const blobBytes = image.blobs.reduce((a, b) => a + b.size, 0);
    const n = image.blobs.length;

    await pullThrough(proxy.url, 'library/metered', '1.0', { ns: 'docker.io' });
    // Clients finish when the digest is verified; each blob enters the cache after its fsync and rename.
    await waitFor('fills to be stored', () => proxy.proxy.service.fillsInProgress === 0);
    let m = await scrape();
    expect(m('ocimirror_cache_misses_total{kind="blob"}')).toBe(n);
    expect(m('ocimirror_cache_hits_total{kind="blob"}')).toBe(0);
    expect(m('ocimirror_blob_bytes_served_total{source="upstream"}')).toBe(blobBytes);
    expect(m('ocimirror_blob_bytes_served_total{source="cache"}')).toBe(0);
    expect(m('ocimirror_cache_misses_total{kind="manifest"}')).toBeGreaterThanOrEqual(1);
    // The blobs, the manifest, and the tag mapping (two 4 KiB files: this Accept set, and "any").
    expect(m('ocimirror_cache_entries')).toBe(n + 2);
    expect(m('ocimirror_cache_size_bytes')).toBe(blobBytes + image.manifest.length + 2 * 4096);
    expect(m('ocimirror_cache_fills_in_progress')).toBe(0);
    const manifestMisses = m('ocimirror_cache_misses_total{kind="manifest"}');
    // Every upstream request the proxy counted is one Distribution logged, and the other way round.
    await dist.flushLog();
    const upstreamLogged = dist.accessLog().filter((l) => l.path.startsWith('/v2/library/metered/')).length;
    const upstreamCounted = m(`ocimirror_upstream_requests_total${up(dist.url)},status="200"}`);
    expect(upstreamCounted).toBe(upstreamLogged);
    expect(m(`ocimirror_upstream_request_duration_seconds_count${up(dist.url)}}`)).toBe(upstreamCounted);

    await pullThrough(proxy.url, 'library/metered', '1.0', { ns: 'docker.io' });
    m = await scrape();
    expect(m('ocimirror_cache_misses_total{kind="blob"}')).toBe(n);
    expect(m('ocimirror_cache_hits_total{kind="blob"}')).toBe(n);
    expect(m('ocimirror_blob_bytes_served_total{source="upstream"}')).toBe(blobBytes);
    expect(m('ocimirror_blob_bytes_served_total{source="cache"}')).toBe(blobBytes);
    expect(m('ocimirror_cache_misses_total{kind="manifest"}')).toBe(manifestMisses);
    expect(m('ocimirror_cache_hits_total{kind="manifest"}')).toBeGreaterThanOrEqual(2);
    // The manifest (kept when stored) and every small blob (kept on its first hit) are held in memory now.
    const small = image.blobs.filter((b) => b.size <= MEMORY_ENTRY_MAX).reduce((sum, b) => sum + b.size, 0);
    expect(m('ocimirror_cache_memory_bytes')).toBe(image.manifest.length + small);
    expect(m(`ocimirror_upstream_requests_total${up(dist.url)},status="200"}`)).toBe(upstreamCounted);
    expect(m('ocimirror_http_requests_total{route="blobs",method="GET",status="200",registry="docker.io"}')).toBe(2 * n);
    expect(m('ocimirror_http_requests_total{route="manifests",method="HEAD",status="200",registry="docker.io"}')).toBe(2);
    expect(m(`ocimirror_upstream_endpoint_up${up(dist.url)}}`)).toBe(1);
    // Cached blobs are written into the raw response, past fastify's send: the access log still has each one.
    const hits = proxy.requests(/\/blobs\//).filter((l) => l.cache === 'hit');
    expect(hits.map((l) => [l.status, l.bytes]).sort()).toEqual(image.blobs.map((b) => [200, b.size]).sort());
  });
});

describe('health and readiness', () => {
  it('/healthz answers; /readyz is 200 while the endpoint is up, 503 once it is known-dead, 200 after a probe succeeds', async () => {
    expect((await fetchFrom(proxy.url, '/healthz')).status).toBe(200);
    let ready = await fetchFrom(proxy.url, '/readyz');
    expect(ready.status).toBe(200);

    await dist.stop();
    // A miss makes the proxy try the endpoint: the refused connection opens its circuit.
    expect((await fetchFrom(proxy.url, '/v2/library/other/manifests/1?ns=docker.io')).status).toBe(503);
    ready = await fetchFrom(proxy.url, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body.toString())).toMatchObject({ status: 'not ready', mirrors: { 'docker.io': { ok: false, endpoints: { [dist.url]: 'down' } } } });
    const m = await scrape();
    expect(m(`ocimirror_upstream_endpoint_up${up(dist.url)}}`)).toBe(0);
    expect(m(`ocimirror_upstream_failures_total${up(dist.url)},reason="transport"}`)).toBe(1);
    expect(m('ocimirror_http_requests_total{route="manifests",method="GET",status="503",registry="docker.io"}')).toBe(1);
    expect((await fetchFrom(proxy.url, '/healthz')).status).toBe(200);

    await dist.start();
    await waitFor('/readyz to answer 200 again', async () => (await fetchFrom(proxy.url, '/readyz')).status === 200, 10_000);
  });
});
