// Manifests by tag: reused for cache.tagTtl with no upstream request, then revalidated with one HEAD (never a GET
// for an unchanged tag), a moved tag served anew; and with every upstream stopped — a real Distribution process —
// manifests by tag (with a Warning), by digest and blobs come from the cache, also after a proxy restart.
// Time is a test clock moved past the TTL, never a sleep.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, MANIFEST_ACCEPT, pullThrough, startTestProxy, testClock, type FetchedResponse, type TestClock, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';

const TTL_MS = 1500;
let dist: Distribution;
let v1: BuiltImage;
let v2: BuiltImage;
let proxies: TestProxy[] = [];
let clock: TestClock;

beforeAll(async () => {
  dist = await startDistribution();
  v1 = await buildImage({ format: 'oci', label: 'tags v1' });
  v2 = await buildImage({ format: 'docker', label: 'tags v2' });
}, 60_000);
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await dist?.close();
});

async function proxy(): Promise<TestProxy> {
  clock = testClock();
  const p = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } }, cache: { tagTtl: `${TTL_MS}ms` } }, { clock });
  proxies.push(p);
  return p;
}

/** Moves the proxy's clock just past the tag TTL. */
const pastTtl = () => clock.advance(TTL_MS + 1);
/** Manifest requests Distribution answered since the last reset, as "METHOD ref". */
async function upstreamManifestRequests(repo: string): Promise<string[]> {
  await dist.flushLog();
  return dist.accessLog().filter((l) => l.path.startsWith(`/v2/${repo}/manifests/`)).map((l) => `${l.method} ${l.path.slice(`/v2/${repo}/manifests/`.length)}`);
}
function expectManifest(res: FetchedResponse, image: BuiltImage, method: 'GET' | 'HEAD' = 'GET'): void {
  expect({ status: res.status, digest: res.headers['docker-content-digest'], type: res.headers['content-type'], length: res.headers['content-length'] })
    .toEqual({ status: 200, digest: image.manifestDigest, type: image.mediaType, length: String(image.manifest.length) });
  if (method === 'GET') expect(res.body.equals(image.manifest)).toBe(true);
}

describe('tag TTL and HEAD revalidation', () => {
  it('within the TTL: no upstream request; after it: one HEAD and no GET while unchanged; a moved tag is served anew', async () => {
    await pushImage(dist.url, 'library/ttl', '1.0', v1);
    const p = await proxy();
    const tag = () => `${p.url}/v2/library/ttl/manifests/1.0`;
    dist.resetLog();
    expectManifest(await fetchFrom(tag(), ''), v1);
    expect(await upstreamManifestRequests('library/ttl')).toEqual(['GET 1.0']);

    dist.resetLog();
    for (let i = 0; i < 3; i++) {
      expectManifest(await fetchFrom(tag(), ''), v1);
      expectManifest(await fetchFrom(tag(), '', { method: 'HEAD' }), v1, 'HEAD');
    }
    expect(await upstreamManifestRequests('library/ttl')).toEqual([]);

    pastTtl();
    dist.resetLog();
    expectManifest(await fetchFrom(tag(), ''), v1);
    expectManifest(await fetchFrom(tag(), ''), v1);
    expectManifest(await fetchFrom(tag(), '', { method: 'HEAD' }), v1, 'HEAD');
    expect(await upstreamManifestRequests('library/ttl')).toEqual(['HEAD 1.0']);

    // HEAD past the TTL revalidates the same way.
    pastTtl();
    dist.resetLog();
    expectManifest(await fetchFrom(tag(), '', { method: 'HEAD' }), v1, 'HEAD');
    expect(await upstreamManifestRequests('library/ttl')).toEqual(['HEAD 1.0']);

    await pushImage(dist.url, 'library/ttl', '1.0', v2);
    pastTtl();
    dist.resetLog();
    expectManifest(await fetchFrom(tag(), ''), v2);
    expectManifest(await fetchFrom(tag(), ''), v2);
    expect(await upstreamManifestRequests('library/ttl')).toEqual(['HEAD 1.0', `GET ${v2.manifestDigest}`]);
  });

  it('by digest a manifest is cached forever: no upstream request however old', async () => {
    await pushImage(dist.url, 'library/pinned', '1.0', v1);
    const p = await proxy();
    const byDigest = () => fetchFrom(`${p.url}/v2/library/pinned/manifests/${v1.manifestDigest}`, '');
    dist.resetLog();
    expectManifest(await byDigest(), v1);
    pastTtl();
    expectManifest(await byDigest(), v1);
    expectManifest(await fetchFrom(`${p.url}/v2/library/pinned/manifests/${v1.manifestDigest}`, '', { method: 'HEAD' }), v1, 'HEAD');
    expect(await upstreamManifestRequests('library/pinned')).toEqual([`GET ${v1.manifestDigest}`]);
  });
});

describe('revalidation over one connection', () => {
  it('HEAD revalidations past the TTL reuse the upstream connection instead of opening one each', async () => {
    const up = await startFaultUpstream();
    try {
      up.add('library/keep', '1.0', v1);
      clock = testClock();
      const p = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [up.url] } }, cache: { tagTtl: `${TTL_MS}ms` } }, { clock });
      proxies.push(p);
      expectManifest(await fetchFrom(`${p.url}/v2/library/keep/manifests/1.0`, ''), v1);
      for (let i = 0; i < 5; i++) {
        pastTtl();
        expectManifest(await fetchFrom(`${p.url}/v2/library/keep/manifests/1.0`, '', { method: 'HEAD' }), v1, 'HEAD');
      }
      expect(up.count('HEAD', /\/manifests\/1\.0$/)).toBe(5);
      expect(up.connections()).toBe(1);
    } finally {
      await up.close();
    }
  });
});

describe('every upstream stopped', () => {
  it('serves manifests by tag (with a Warning), by digest and blobs from the cache, also after a proxy restart', async () => {
    await pushImage(dist.url, 'library/offline', '1.0', v1);
    const p = await proxy();
    const tag = () => `${p.url}/v2/library/offline/manifests/1.0`;
    expectManifest(await fetchFrom(tag(), ''), v1);
    const pulled = await pullThrough(p.url, 'library/offline', '1.0');
    expect(pulled.blobs.sort()).toEqual(v1.blobs.map((b) => b.digest).sort());

    await dist.stop();
    try {
      for (const phase of ['stopped', 'stopped, proxy restarted']) {
        if (phase !== 'stopped') await p.restart();
        pastTtl();
        const got = await fetchFrom(tag(), '');
        expectManifest(got, v1);
        expect(got.headers.warning, phase).toMatch(/^110 /);
        const head = await fetchFrom(tag(), '', { method: 'HEAD' });
        expectManifest(head, v1, 'HEAD');
        expect(head.headers.warning, phase).toMatch(/^110 /);
        const byDigest = await fetchFrom(`${p.url}/v2/library/offline/manifests/${v1.manifestDigest}`, '');
        expectManifest(byDigest, v1);
        expect(byDigest.headers.warning, phase).toBeUndefined();
        const again = await pullThrough(p.url, 'library/offline', '1.0');
        expect(again.digest).toBe(v1.manifestDigest);
        expect(again.blobs.sort(), phase).toEqual(pulled.blobs.sort());
      }
      // One warning per tag and process (two processes here), not one per request.
      expect(p.logs().filter((l) => l.level === 40 && /serving the last known manifest/.test(l.msg))).toHaveLength(2);
      // What was never cached is an outage (503), never a silent 404.
      const unknown = await fetchFrom(`${p.url}/v2/library/offline/manifests/2.0`, '');
      expect(unknown.status).toBe(503);
    } finally {
      await dist.start();
    }
  });

  it('the stale answer is keyed by the Accept set, ignoring its order and parameters', async () => {
    await pushImage(dist.url, 'library/accept', '1.0', v1);
    const p = await proxy();
    const tag = () => `${p.url}/v2/library/accept/manifests/1.0`;
    expectManifest(await fetchFrom(tag(), '', { headers: { accept: MANIFEST_ACCEPT } }), v1);
    await dist.stop();
    try {
      pastTtl();
      expect((await fetchFrom(tag(), '', { headers: { accept: MANIFEST_ACCEPT } })).headers.warning).toMatch(/^110 /);
      // Same set, other order and parameters: the same key.
      const reordered = MANIFEST_ACCEPT.split(', ').reverse().map((t) => `${t};q=0.9`).join(', ');
      expect((await fetchFrom(tag(), '', { headers: { accept: reordered } })).status).toBe(200);
    } finally {
      await dist.start();
    }
  });
});
