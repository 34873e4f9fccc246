// Pulls through ocimirror from a real CNCF Distribution: single- and multi-arch, OCI and Docker; routing by ?ns=,
// path prefix and default registry; exact headers; manifest checks; unconfigured registries refused at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, buildIndex, sha256, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { fetchFrom, ociErrors, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage, pushIndex } from '../helpers/push.js';

const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];
let dist: Distribution;
let fault: FaultUpstream;
let proxy: TestProxy;
let oci: BuiltImage, docker: BuiltImage, ociIndex: BuiltIndex, dockerList: BuiltIndex, big: BuiltImage;

/** A well-formed image whose manifest is just over 4 MiB (a large annotation). */
function oversized(image: BuiltImage): BuiltImage {
  const m = JSON.parse(image.manifest.toString()) as Record<string, unknown>;
  m.annotations = { padding: 'x'.repeat(4 * 1024 * 1024 + 10) };
  const manifest = Buffer.from(JSON.stringify(m));
  return { ...image, manifest, manifestDigest: sha256(manifest) };
}

beforeAll(async () => {
  [oci, docker, ociIndex, dockerList] = await Promise.all([
    buildImage({ format: 'oci', label: 'routing oci' }), buildImage({ format: 'docker', label: 'routing docker' }),
    buildIndex({ format: 'oci', platforms, label: 'routing oci index' }), buildIndex({ format: 'docker', platforms, label: 'routing docker list' }),
  ]);
  big = oversized(await buildImage({ format: 'oci', label: 'big manifest' }));
  [dist, fault] = await Promise.all([startDistribution(), startFaultUpstream()]);
  await pushImage(dist.url, 'library/single', 'oci', oci);
  await pushImage(dist.url, 'library/single', 'docker', docker);
  await pushIndex(dist.url, 'library/multi', 'oci', ociIndex);
  await pushIndex(dist.url, 'library/multi', 'docker', dockerList);
  for (const t of ['a', 'b', 'c']) await pushImage(dist.url, 'library/tagged', t, oci);
  fault.add('library/big', '1.0', big);
  fault.add('library/single', 'oci', oci);
  proxy = await startTestProxy({
    cache: { tagTtl: '0s' },
    mirrors: {
      'docker.io': { endpoint: [dist.url] },
      [dist.host]: { endpoint: [dist.url] },
      [fault.host]: { endpoint: [fault.url] },
      'corrupt.test': { endpoint: [fault.url, dist.url] },
    },
  });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), dist?.close(), fault?.close()]);
});

describe('pulls with digests equal to the upstream\'s', () => {
  const cases = (): [string, string, BuiltImage | BuiltIndex][] => [
    ['library/single', 'oci', oci], ['library/single', 'docker', docker], ['library/multi', 'oci', ociIndex], ['library/multi', 'docker', dockerList],
  ];

  it('single- and multi-arch, OCI and Docker, routed by ?ns=docker.io', async () => {
    for (const [repo, tag, want] of cases()) {
      const got = await pullThrough(proxy.url, repo, tag, { ns: 'docker.io' });
      expect(got.digest, `${repo}:${tag}`).toBe(want.manifestDigest);
      const blobs = 'images' in want ? want.images.flatMap((i) => i.image.blobs) : want.blobs;
      expect(new Set(got.blobs)).toEqual(new Set(blobs.map((b) => b.digest)));
    }
  }, 60_000);

  it('the manifest bytes and Content-Type are exactly the upstream\'s', async () => {
    for (const [repo, tag, want] of cases()) {
      const res = await fetchFrom(proxy.url, `/v2/${repo}/manifests/${tag}?ns=docker.io`);
      expect(res.status).toBe(200);
      expect(res.body.equals(want.manifest)).toBe(true);
      expect(res.headers['content-type']).toBe(want.mediaType);
      expect(res.headers['docker-content-digest']).toBe(want.manifestDigest);
      expect(res.headers['content-length']).toBe(String(want.manifest.length));
    }
  }, 30_000);

  // Three images nobody pulled before: each route is shown by upstream traffic, not by a cache hit.
  it('routed by encoded ns (127.0.0.1%3APORT), by path prefix and by the default registry', async () => {
    const [a, b, c] = await Promise.all(['ns', 'prefix', 'default'].map((label) => buildImage({ format: 'oci', label: `route ${label}` })));
    await pushImage(dist.url, 'library/route', 'ns', a!);
    await pushImage(dist.url, 'library/route', 'prefix', b!);
    await pushImage(dist.url, 'library/route', 'default', c!);
    const ns = await pullThrough(proxy.url, 'library/route', 'ns', { ns: dist.host });
    const prefix = await pullThrough(proxy.url, `${dist.host}/library/route`, 'prefix');
    const dflt = await pullThrough(proxy.url, 'library/route', 'default');
    expect([ns.digest, prefix.digest, dflt.digest]).toEqual([a!.manifestDigest, b!.manifestDigest, c!.manifestDigest]);
    const encoded = proxy.requests(new RegExp(`ns=127\\.0\\.0\\.1%3A${dist.port}`));
    expect(encoded.length).toBeGreaterThanOrEqual(5);
    expect(new Set(encoded.map((l) => l.registry))).toEqual(new Set([dist.host]));
    const prefixed = proxy.requests(new RegExp(`^/v2/127\\.0\\.0\\.1:${dist.port}/library/route/`));
    expect(prefixed.length).toBeGreaterThanOrEqual(5);
    expect(new Set(prefixed.map((l) => l.registry))).toEqual(new Set([dist.host]));
    const dfltLines = proxy.requests(/^\/v2\/library\/route\/[^?]*$/);
    expect(dfltLines.length).toBeGreaterThanOrEqual(5);
    expect(new Set(dfltLines.map((l) => l.registry))).toEqual(new Set(['docker.io']));
  }, 60_000);

  it('the same image pulled a second time (now from the cache) still arrives intact', async () => {
    const image = await buildImage({ format: 'docker', label: 'pulled twice' });
    await pushImage(dist.url, 'library/twice', '1.0', image);
    expect((await pullThrough(proxy.url, 'library/twice', '1.0', { ns: 'docker.io' })).digest).toBe(image.manifestDigest);
    expect((await pullThrough(proxy.url, 'library/twice', '1.0', { ns: 'docker.io' })).digest).toBe(image.manifestDigest);
    expect((await pullThrough(proxy.url, 'library/twice', '1.0', { ns: 'docker.io' })).digest).toBe(image.manifestDigest);
  }, 60_000);

  it('answers OCI-Namespace on routed responses', async () => {
    const res = await fetchFrom(proxy.url, `/v2/library/single/manifests/oci?ns=${encodeURIComponent(dist.host)}`, { method: 'HEAD' });
    expect(res.headers['oci-namespace']).toBe(dist.host);
    expect((await fetchFrom(proxy.url, '/v2/library/single/manifests/oci', { method: 'HEAD' })).headers['oci-namespace']).toBe('docker.io');
  });

  it('Docker Hub single-component names get library/', async () => {
    dist.resetLog();
    const res = await fetchFrom(proxy.url, '/v2/single/manifests/oci?ns=docker.io');
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(oci.manifestDigest);
    await dist.flushLog();
    const paths = dist.accessLog().map((l) => l.path);
    expect(paths).toContain('/v2/library/single/manifests/oci');
    expect(paths.filter((p) => p.startsWith('/v2/single/'))).toEqual([]);
  });
});

describe('HEAD', () => {
  it('a manifest HEAD has no body and carries Docker-Content-Digest, Content-Length and Content-Type', async () => {
    for (const want of [oci, dockerList]) {
      const repo = want === oci ? 'library/single' : 'library/multi';
      const tag = want === oci ? 'oci' : 'docker';
      const res = await fetchFrom(proxy.url, `/v2/${repo}/manifests/${tag}?ns=docker.io`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
      expect(res.headers['docker-content-digest']).toBe(want.manifestDigest);
      expect(res.headers['content-length']).toBe(String(want.manifest.length));
      expect(res.headers['content-type']).toBe(want.mediaType);
    }
  });

  it('a blob HEAD has no body and carries digest and length', async () => {
    const layer = oci.layers[0]!;
    const res = await fetchFrom(proxy.url, `/v2/library/single/blobs/${layer.digest}?ns=docker.io`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(res.headers['docker-content-digest']).toBe(layer.digest);
    expect(res.headers['content-length']).toBe(String(layer.size));
  });

  it('a blob Range is honoured (206 / 416)', async () => {
    const layer = oci.layers[0]!;
    const part = await fetchFrom(proxy.url, `/v2/library/single/blobs/${layer.digest}?ns=docker.io`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(layer.data!.subarray(10, 20))).toBe(true);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${layer.size}`);
    const bad = await fetchFrom(proxy.url, `/v2/library/single/blobs/${layer.digest}?ns=docker.io`, { headers: { range: `bytes=${layer.size + 5}-` } });
    expect(bad.status).toBe(416);
  });
});

describe('manifest checks', () => {
  it('a manifest over 4 MiB is refused on GET', async () => {
    const res = await fetchFrom(proxy.url, `/v2/library/big/manifests/1.0?ns=${encodeURIComponent(fault.host)}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.length).toBeLessThan(1024 * 1024);
    expect(ociErrors(res)[0]?.code).toBe('MANIFEST_INVALID');
  });

  it('a manifest over 4 MiB is refused on HEAD too (containerd resolves with HEAD)', async () => {
    const res = await fetchFrom(proxy.url, `/v2/library/big/manifests/1.0?ns=${encodeURIComponent(fault.host)}`, { method: 'HEAD' });
    expect(res.status).toBeGreaterThanOrEqual(400);
  });

  // An image used nowhere else, so no cache in front of the upstream can have seen it.
  it('a corrupted manifest fetched by digest is skipped: the next endpoint serves the right bytes', async () => {
    const image = await buildImage({ format: 'oci', label: 'corrupt by digest' });
    await pushImage(dist.url, 'library/corrupt', 'digest', image);
    fault.add('library/corrupt', 'digest', image);
    fault.fault({ method: 'GET', path: /^\/v2\/library\/corrupt\/manifests\// }, { kind: 'corrupt' });
    try {
      dist.resetLog();
      const res = await fetchFrom(proxy.url, `/v2/library/corrupt/manifests/${image.manifestDigest}?ns=corrupt.test`);
      expect(res.status).toBe(200);
      expect(res.body.equals(image.manifest)).toBe(true);
      expect(fault.count('GET', new RegExp(`^/v2/library/corrupt/manifests/${image.manifestDigest}$`))).toBe(1);
      await dist.flushLog();
      expect(dist.count('GET', new RegExp(`^/v2/library/corrupt/manifests/${image.manifestDigest}$`))).toBe(1);
    } finally {
      fault.clearFaults();
    }
  });

  it('a corrupted manifest from the only endpoint is an error, never the wrong bytes', async () => {
    const lonely = await buildImage({ format: 'oci', label: 'lonely' });
    fault.add('library/lonely', 'oci', lonely);
    fault.fault({ method: 'GET', path: /\/library\/lonely\/manifests\// }, { kind: 'corrupt' });
    try {
      const res = await fetchFrom(proxy.url, `/v2/library/lonely/manifests/${lonely.manifestDigest}?ns=${encodeURIComponent(fault.host)}`);
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(ociErrors(res)[0]?.code).toBe('UNAVAILABLE');
      expect(JSON.stringify(ociErrors(res)[0]?.detail)).toMatch(/digest mismatch/);
    } finally {
      fault.clearFaults();
    }
  });
});

// Distribution 2.8 ignores n/last, so pagination is shown against the fault upstream, which implements them.
describe('tags/list', () => {
  it('paginates with n/last and rewrites Link to point here, keeping ns', async () => {
    for (const t of ['a', 'b', 'c']) fault.add('library/tagged', t, oci);
    const ns = encodeURIComponent(fault.host);
    const res = await fetchFrom(proxy.url, `/v2/library/tagged/tags/list?n=2&ns=${ns}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ name: 'library/tagged', tags: ['a', 'b'] });
    const next = /<([^>]+)>;\s*rel="next"/.exec(String(res.headers.link))?.[1];
    expect(next).toMatch(/^\/v2\/library\/tagged\/tags\/list\?/);
    expect(new URL(next!, proxy.url).searchParams.get('ns')).toBe(fault.host);
    const page2 = await fetchFrom(proxy.url, next!);
    expect(JSON.parse(page2.body.toString())).toEqual({ name: 'library/tagged', tags: ['c'] });
    expect(page2.headers.link).toBeUndefined();
  });

  it('lists a real Distribution\'s tags', async () => {
    const res = await fetchFrom(proxy.url, '/v2/library/tagged/tags/list?ns=docker.io');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body.toString()) as { tags: string[] }).tags.sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('never an open proxy', () => {
  it('an unconfigured registry (?ns= or a path prefix) gets a 4xx at once and causes no outbound request', async () => {
    await dist.flushLog();
    dist.resetLog();
    const faultBefore = fault.requests().length;
    for (const path of ['/v2/org/app/manifests/1.0?ns=quay.io', '/v2/quay.io/org/app/manifests/1.0', `/v2/org/app/blobs/${oci.config.digest}?ns=ghcr.io`, '/v2/registry.example.com/library/single/manifests/oci']) {
      const res = await fetchFrom(proxy.url, path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    await dist.flushLog();
    expect(dist.accessLog()).toEqual([]);
    expect(fault.requests().length).toBe(faultBefore);
  });
});
