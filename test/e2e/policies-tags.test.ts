// Tag policies against a real Distribution, counted from its access log, on a test clock (never a sleep):
// immutable tags cost no upstream request after their first pull however old; mutable ones are revalidated with
// HEAD and a moved tag is picked up; a missing tag is asked for once per negativeTtl; a tag upstream deleted is
// served (with a Warning) within staleIfNotFound and refused after it.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, ociErrors, pullThrough, startTestProxy, testClock, type TestClock, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';

const MINUTE = 60_000;
let dist: Distribution;
let v1: BuiltImage;
let v2: BuiltImage;
let clock: TestClock;
let p: TestProxy;

beforeAll(async () => {
  dist = await startDistribution();
  v1 = await buildImage({ format: 'oci', label: 'policies v1' });
  v2 = await buildImage({ format: 'docker', label: 'policies v2' });
  clock = testClock();
  p = await startTestProxy({
    mirrors: { 'docker.io': { endpoint: [dist.url] } },
    cache: { tagTtl: '1m' },
    policies: [
      { match: { registry: 'docker.io', repository: 'library/*' }, tagTtl: '10m', immutableTags: '^v?[0-9]+\\.[0-9]+\\.[0-9]+$', staleIfNotFound: '1h', negativeTtl: '30s' },
    ],
  }, { clock });
}, 60_000);
afterAll(async () => {
  await p?.close();
  await dist?.close();
});

/** Manifest reads (the proxy's; not the test's pushes) Distribution answered since the last resetLog(), as "METHOD ref". */
async function upstreamManifests(repo: string): Promise<string[]> {
  await dist.flushLog();
  return dist.accessLog().filter((l) => l.path.startsWith(`/v2/${repo}/manifests/`) && (l.method === 'GET' || l.method === 'HEAD')).map((l) => `${l.method} ${l.path.slice(`/v2/${repo}/manifests/`.length)}`);
}
const tagUrl = (repo: string, tag: string) => `${p.url}/v2/${repo}/manifests/${tag}`;

async function metric(name: string): Promise<number> {
  const text = (await fetchFrom(p.url, '/metrics')).body.toString('utf8');
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? 'NaN');
}

describe('immutable and mutable tags', () => {
  it('an immutable tag costs 0 upstream requests after its first pull, even days past the TTL', async () => {
    await pushImage(dist.url, 'library/web', '1.25.3', v1);
    dist.resetLog();
    const first = await pullThrough(p.url, 'library/web', '1.25.3');
    expect(first.digest).toBe(v1.manifestDigest);
    expect(await upstreamManifests('library/web')).toEqual(['HEAD 1.25.3', `GET ${v1.manifestDigest}`]);

    dist.resetLog();
    for (const ms of [11 * MINUTE, 24 * 60 * MINUTE, 7 * 24 * 60 * MINUTE]) {
      clock.advance(ms);
      expect((await pullThrough(p.url, 'library/web', '1.25.3')).digest).toBe(v1.manifestDigest);
      const get = await fetchFrom(tagUrl('library/web', '1.25.3'), '');
      expect(get.status).toBe(200);
      expect(get.headers.warning).toBeUndefined();
    }
    await p.restart();
    expect((await pullThrough(p.url, 'library/web', '1.25.3')).digest).toBe(v1.manifestDigest);
    expect(await upstreamManifests('library/web')).toEqual([]);
  });

  it('a mutable tag of the same repository is revalidated with HEAD after the policy TTL, and a move is picked up', async () => {
    await pushImage(dist.url, 'library/web', 'latest', v1);
    expect((await pullThrough(p.url, 'library/web', 'latest')).digest).toBe(v1.manifestDigest);
    dist.resetLog();
    clock.advance(9 * MINUTE); // within the policy's 10m (cache.tagTtl's 1m would have expired)
    expect((await pullThrough(p.url, 'library/web', 'latest')).digest).toBe(v1.manifestDigest);
    expect(await upstreamManifests('library/web')).toEqual([]);

    clock.advance(2 * MINUTE);
    expect((await pullThrough(p.url, 'library/web', 'latest')).digest).toBe(v1.manifestDigest);
    expect(await upstreamManifests('library/web')).toEqual(['HEAD latest']);

    await pushImage(dist.url, 'library/web', 'latest', v2);
    clock.advance(11 * MINUTE);
    dist.resetLog();
    expect((await pullThrough(p.url, 'library/web', 'latest')).digest).toBe(v2.manifestDigest);
    expect(await upstreamManifests('library/web')).toEqual(['HEAD latest', `GET ${v2.manifestDigest}`]);
  });
});

describe('negative cache', () => {
  it('50 pulls of a missing tag within negativeTtl cost 1 upstream request; after it, upstream is asked again', async () => {
    await pushImage(dist.url, 'library/api', '1.0', v1);
    dist.resetLog();
    const before = await metric('ocimirror_cache_negative_hits_total');
    for (let i = 0; i < 50; i++) {
      const head = await fetchFrom(tagUrl('library/api', 'nope'), '', { method: 'HEAD' });
      expect(head.status).toBe(404);
      clock.advance(500);
    }
    expect(await upstreamManifests('library/api')).toEqual(['HEAD nope']);
    expect(await metric('ocimirror_cache_negative_hits_total')).toBe(before + 49);
    const get = await fetchFrom(tagUrl('library/api', 'nope'), '');
    expect(ociErrors(get)[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    expect(ociErrors(get)[0]?.message).toMatch(/negativeTtl/);

    // Pushed meanwhile: visible once negativeTtl (30s) has passed since the 404.
    const v3 = await buildImage({ format: 'oci', label: 'policies v3' });
    await pushImage(dist.url, 'library/api', 'nope', v3);
    expect((await fetchFrom(tagUrl('library/api', 'nope'), '')).status).toBe(404);
    clock.advance(5_001);
    expect((await pullThrough(p.url, 'library/api', 'nope')).digest).toBe(v3.manifestDigest);
    expect(await upstreamManifests('library/api')).toEqual(['HEAD nope', 'HEAD nope', `GET ${v3.manifestDigest}`]);
  });
});

describe('staleIfNotFound', () => {
  it('a tag upstream deleted is served with Warning 110 within the window, and 404 after it', async () => {
    await pushImage(dist.url, 'library/gone', 'stable', v1);
    expect((await pullThrough(p.url, 'library/gone', 'stable')).digest).toBe(v1.manifestDigest);
    const del = await request(`${dist.url}/v2/library/gone/manifests/${v1.manifestDigest}`, { method: 'DELETE' });
    await del.body.dump();
    expect(del.statusCode).toBe(202);

    const stale = { error: await metric('ocimirror_cache_stale_served_total{reason="error"}'), notfound: await metric('ocimirror_cache_stale_served_total{reason="notfound"}') };
    clock.advance(10 * MINUTE + 30 * MINUTE); // 30 minutes past the TTL, within staleIfNotFound (1h)
    dist.resetLog();
    const served = await fetchFrom(tagUrl('library/gone', 'stable'), '');
    expect(served.status).toBe(200);
    expect(served.headers['docker-content-digest']).toBe(v1.manifestDigest);
    expect(served.headers.warning).toBe('110 ocimirror "Response is Stale: upstream no longer has this tag; age 2400s"');
    // The 404 is remembered (negativeTtl): the next answers come without asking upstream.
    expect((await pullThrough(p.url, 'library/gone', 'stable')).digest).toBe(v1.manifestDigest);
    expect(await upstreamManifests('library/gone')).toEqual(['HEAD stable']);
    expect(await metric('ocimirror_cache_stale_served_total{reason="notfound"}')).toBe(stale.notfound + 2);
    expect(await metric('ocimirror_cache_stale_served_total{reason="error"}')).toBe(stale.error);
    expect(p.warnings(/upstream says this tag is gone/)).toHaveLength(1);

    clock.advance(31 * MINUTE); // past TTL + staleIfNotFound
    const refused = await fetchFrom(tagUrl('library/gone', 'stable'), '');
    expect(refused.status).toBe(404);
    expect(ociErrors(refused)[0]?.code).toBe('MANIFEST_UNKNOWN');
    // By digest it is still the immutable, verified manifest it always was.
    expect((await fetchFrom(`${p.url}/v2/library/gone/manifests/${v1.manifestDigest}`, '')).status).toBe(200);
  });
});
