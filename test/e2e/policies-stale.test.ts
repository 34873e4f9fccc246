// staleIfError: with every endpoint answering 5xx or 429, a cached tag is pulled (Warning 110 with its age, counted
// by reason) for staleIfError past its TTL; after that the client gets the upstream's error. A mapping brought in
// by `ocimirror import` has no such bound. Faults come from the in-process fault upstream; time from a test clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseAccept } from '../../src/oci/mediatypes.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, MANIFEST_ACCEPT, ociErrors, pullThrough, startTestProxy, testClock, type TestClock, type TestProxy } from '../helpers/proxy.js';

const MINUTE = 60_000;
let up: FaultUpstream;
let img: BuiltImage;
let clock: TestClock;
let p: TestProxy;

beforeAll(async () => {
  up = await startFaultUpstream();
  img = await buildImage({ format: 'oci', label: 'stale windows' });
  for (const repo of ['library/five', 'library/many', 'library/imp']) up.add(repo, '1.0', img);
  clock = testClock();
  p = await startTestProxy({
    mirrors: { 'docker.io': { endpoint: [up.url] } },
    cache: { tagTtl: '1m' },
    upstream: { health: { cooldown: '1h', probeInterval: '1h' } },
    policies: [{ match: { registry: 'docker.io', repository: 'library/*' }, staleIfError: '1h' }],
  }, { clock });
}, 60_000);
afterAll(async () => {
  await p?.close();
  await up?.close();
});

const tagUrl = (repo: string) => `${p.url}/v2/${repo}/manifests/1.0`;
async function staleServed(reason: string): Promise<number> {
  const text = (await fetchFrom(p.url, '/metrics')).body.toString('utf8');
  return Number(new RegExp(`^ocimirror_cache_stale_served_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

describe('staleIfError', () => {
  it('5xx: pulls succeed with Warning 110 and the age within the window; after it the client gets 503', async () => {
    expect((await pullThrough(p.url, 'library/five', '1.0')).digest).toBe(img.manifestDigest);
    up.fault({ path: /\/manifests\// }, { kind: 'status', status: 503 });
    try {
      const before = await staleServed('error');
      clock.advance(MINUTE + 30 * MINUTE);
      const head = await fetchFrom(tagUrl('library/five'), '', { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.warning).toBe('110 ocimirror "Response is Stale: every upstream endpoint failed; age 1860s"');
      expect((await pullThrough(p.url, 'library/five', '1.0')).digest).toBe(img.manifestDigest);
      expect(await staleServed('error')).toBe(before + 2);

      clock.advance(30 * MINUTE + 1); // TTL + staleIfError + 1 ms
      const refused = await fetchFrom(tagUrl('library/five'), '');
      expect(refused.status).toBe(503);
      expect(ociErrors(refused)[0]).toMatchObject({ code: 'UNAVAILABLE' });
      expect(JSON.stringify(ociErrors(refused)[0]?.detail)).toContain('HTTP 503');
    } finally {
      up.clearFaults();
    }
  });

  it('429: the same window, counted as ratelimit; after it the client gets 429', async () => {
    expect((await pullThrough(p.url, 'library/many', '1.0')).digest).toBe(img.manifestDigest);
    up.fault({ path: /\/manifests\// }, { kind: 'status', status: 429 });
    try {
      const before = await staleServed('ratelimit');
      clock.advance(MINUTE + 59 * MINUTE);
      const got = await fetchFrom(tagUrl('library/many'), '');
      expect(got.status).toBe(200);
      expect(got.body.equals(img.manifest)).toBe(true);
      expect(got.headers.warning).toBe('110 ocimirror "Response is Stale: upstream rate limit reached or nearly used up; age 3600s"');
      expect(await staleServed('ratelimit')).toBe(before + 1);

      clock.advance(MINUTE + 1);
      const refused = await fetchFrom(tagUrl('library/many'), '');
      expect(refused.status).toBe(429);
      expect(ociErrors(refused)[0]).toMatchObject({ code: 'TOOMANYREQUESTS' });
    } finally {
      up.clearFaults();
    }
  });

  it('an imported mapping stays servable past the window while upstream fails', async () => {
    expect((await pullThrough(p.url, 'library/imp', '1.0')).digest).toBe(img.manifestDigest);
    const key = { registry: 'docker.io', repo: 'library/imp', tag: '1.0', accept: normaliseAccept(MANIFEST_ACCEPT) };
    const mapping = await p.proxy.service.stores.tags.get(key);
    expect(mapping?.digest).toBe(img.manifestDigest);
    await p.proxy.service.stores.tags.set(key, { ...mapping!, imported: true });
    up.fault({ path: /\/manifests\// }, { kind: 'status', status: 503 });
    try {
      clock.advance(30 * 24 * 60 * MINUTE);
      const got = await fetchFrom(tagUrl('library/imp'), '');
      expect(got.status).toBe(200);
      expect(got.headers.warning).toMatch(/^110 ocimirror "Response is Stale: every upstream endpoint failed; age \d+s"$/);
      // The same age without the marker is refused.
      await p.proxy.service.stores.tags.set(key, mapping!);
      expect((await fetchFrom(tagUrl('library/imp'), '')).status).toBe(503);
    } finally {
      up.clearFaults();
    }
  });
});
