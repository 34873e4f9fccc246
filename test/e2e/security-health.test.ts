// Issue 8 rule 12: one client cannot poison an endpoint's health. Real Distribution answers 500 when a blob digest is
// asked for as a manifest; ten such requests must leave the endpoint up and /readyz green. A real outage (the
// process gone, or every answer a 5xx including /v2/) is still detected by the request that meets it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { waitFor } from '../helpers/eventually.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';

// Background probes of down endpoints never run during a test: only requests and their own checks change health.
const QUIET = { health: { cooldown: '10m', maxCooldown: '10m', probeInterval: '10m' } };

const ready = async (p: TestProxy) => (await fetchFrom(p.url, '/readyz')).status;
const endpointUp = async (p: TestProxy) => /ocimirror_upstream_endpoint_up\{[^}]*\} 1/.test((await fetchFrom(p.url, '/metrics')).body.toString());

let dist: Distribution;
let image: BuiltImage;
let proxy: TestProxy;

beforeAll(async () => {
  dist = await startDistribution();
  image = await buildImage({ format: 'docker', label: 'health poisoning' });
  await pushImage(dist.url, 'library/healthy', '1.0', image);
  proxy = await startTestProxy({ cache: { tagTtl: '0s' }, upstream: QUIET, mirrors: { 'docker.io': { endpoint: [dist.url] } } });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), dist?.close()]);
});

describe('requests one client chose', () => {
  it('ten manifest requests for blob digests (Distribution: 500) leave the endpoint up and /readyz green', async () => {
    dist.resetLog();
    for (let i = 0; i < 10; i++) {
      const blob = image.blobs[i % image.blobs.length]!.digest;
      const res = await fetchFrom(proxy.url, `/v2/library/healthy/manifests/${blob}?ns=docker.io`);
      expect(res.status).toBeGreaterThanOrEqual(500);
    }
    await dist.flushLog();
    expect(dist.accessLog().filter((l) => l.path.includes('/manifests/sha256:')).map((l) => l.status)).toContain(500);
    // Each 500 made ocimirror ask GET /v2/; wait until one such check has been answered.
    await waitFor('a /v2/ check', async () => { await dist.flushLog(); return dist.count('GET', /^\/v2\/$/) > 0; }, 10_000);
    expect(await ready(proxy)).toBe(200);
    expect(await endpointUp(proxy)).toBe(true);
    const before = dist.count('HEAD', /\/manifests\/1\.0$/);
    expect((await pullThrough(proxy.url, 'library/healthy', '1.0', { ns: 'docker.io' })).digest).toBe(image.manifestDigest);
    await dist.flushLog();
    expect(dist.count('HEAD', /\/manifests\/1\.0$/)).toBe(before + 1);
  });
});

describe('a real outage is still detected by the request that meets it', () => {
  it('the process gone: down after one request, /readyz red at once', async () => {
    await dist.stop();
    try {
      // A tag never fetched: a cached one would be answered stale (with a Warning) during the outage.
      expect((await fetchFrom(proxy.url, '/v2/library/healthy/manifests/never-fetched?ns=docker.io')).status).toBe(503);
      expect(await ready(proxy)).toBe(503);
      expect(await endpointUp(proxy)).toBe(false);
    } finally {
      await dist.start();
    }
  });

  it('every answer a 5xx, /v2/ included: down as soon as the check made by the first failing request returns', async () => {
    let broken: FaultUpstream | undefined;
    let p: TestProxy | undefined;
    try {
      broken = await startFaultUpstream();
      broken.fault({ path: /^\/v2\// }, { kind: 'status', status: 503 });
      p = await startTestProxy({ upstream: QUIET, mirrors: { 'docker.io': { endpoint: [broken.url] } } });
      expect(await ready(p)).toBe(200);
      expect((await fetchFrom(p.url, '/v2/library/healthy/manifests/1.0?ns=docker.io')).status).toBe(503);
      const target = p;
      await waitFor('readiness to turn red', async () => (await ready(target)) === 503, 10_000);
      expect(broken.count('GET', /^\/v2\/$/)).toBe(1);
    } finally {
      await Promise.allSettled([p?.close(), broken?.close()]);
    }
  });
});
