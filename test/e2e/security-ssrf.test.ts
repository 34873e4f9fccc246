// Issue 8 rule 3: no SSRF through "*" or redirects. Under "*" a registry that is an IP literal in any spelling, a
// loopback name, or a name that resolves to a private address is refused (the last at connect time: DNS rebinding);
// a named loopback endpoint keeps working; upstream.allowPrivateNetworks lets them through. Redirects and token
// realms are judged hop by hop: a public endpoint cannot send ocimirror to a private address. Everything stays on
// loopback: the test network resolves only the names listed here, and 127.0.0.2 plays a public host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/upstream/addresses.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, ociErrors, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';

const PUBLIC = '127.0.0.2';
const playPublic = (address: string) => address !== PUBLIC && isPrivateAddress(address);

let loop: FaultUpstream; // 127.0.0.1, https: what a name resolving to loopback would reach
let plain: FaultUpstream; // 127.0.0.1, http: what a loopback literal would reach (loopback with a port means http)
let named: FaultUpstream; // 127.0.0.1, http: an endpoint the config names
let pub: FaultUpstream; // 127.0.0.2, https: "public"
let pub2: FaultUpstream; // 127.0.0.2, http: another "public" host a redirect may go to
let image: BuiltImage;
const proxies: TestProxy[] = [];

async function proxyWith(upstream: Record<string, unknown>, hosts: Record<string, string>): Promise<TestProxy> {
  const p = await startTestProxy({
    upstream: { connectTimeout: '2s', responseTimeout: '5s', ...upstream },
    mirrors: { '*': { endpoint: [] }, [`127.0.0.1:${named.port}`]: { endpoint: [named.url] } },
    // Trusting loop's certificate lets a realm on it answer, if the private-address check ever let one through.
    configs: { '*': { tls: { insecure_skip_verify: true, ca_file: loop.caFile } } },
  }, { network: { hosts, isPrivate: playPublic } });
  proxies.push(p);
  return p;
}

beforeAll(async () => {
  [loop, plain, named, pub, pub2] = await Promise.all([
    startFaultUpstream({ tls: true }), startFaultUpstream(), startFaultUpstream(), startFaultUpstream({ tls: true, host: PUBLIC }), startFaultUpstream({ host: PUBLIC }),
  ]);
  image = await buildImage({ format: 'oci', label: 'ssrf' });
  for (const u of [loop, plain, named, pub, pub2]) u.add('library/ssrf', '1.0', image);
  // One tag per redirect case: a tag already answered would come from the cache, not through the redirect.
  for (let i = 0; i < 8; i++) pub.add('library/ssrf', `r${i}`, image);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([...proxies.map((p) => p.close()), loop?.close(), plain?.close(), named?.close(), pub?.close(), pub2?.close()]);
});

describe('"*" with upstream.allowPrivateNetworks off', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await proxyWith({}, { 'rebind.example.test': '127.0.0.1', 'public.example.test': PUBLIC });
  });

  it.each([
    '127.0.0.1', 'localhost', '0x7f.1', '127.1', '2130706433', '0177.0.0.1', '[::ffff:7f00:1]', '[::1]', 'sub.localhost',
  ])('refuses %s:PORT with 404 NAME_UNKNOWN, before any lookup or connection', async (host) => {
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/1.0?ns=${encodeURIComponent(`${host}:${plain.port}`)}`);
    expect(res.status).toBe(404);
    expect(ociErrors(res)[0]?.code).toBe('NAME_UNKNOWN');
    expect(plain.requests()).toEqual([]);
    expect(proxy.network.lookups).toEqual([]);
  });

  it.each(['[::ffff:127.0.0.1]', 'localhost.', '127.0.0.1.'])('refuses %s:PORT as an invalid name', async (host) => {
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/1.0?ns=${encodeURIComponent(`${host}:${plain.port}`)}`);
    expect(res.status).toBe(400);
    expect(proxy.network.lookups).toEqual([]);
  });

  it('refuses a name that resolves to 127.0.0.1 at connect time, and says why', async () => {
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/1.0?ns=rebind.example.test:${loop.port}`);
    expect(res.status).toBe(503);
    expect(JSON.stringify(ociErrors(res)[0]?.detail)).toMatch(/127\.0\.0\.1 is a private address/);
    expect(proxy.network.lookups).toContain('rebind.example.test');
    expect(loop.requests()).toEqual([]);
  });

  it('serves a public name, and a loopback endpoint the config names', async () => {
    expect((await pullThrough(proxy.url, 'library/ssrf', '1.0', { ns: `public.example.test:${pub.port}` })).digest).toBe(image.manifestDigest);
    expect((await pullThrough(proxy.url, 'library/ssrf', '1.0', { ns: `127.0.0.1:${named.port}` })).digest).toBe(image.manifestDigest);
    expect(pub.count('HEAD', /\/manifests\/1\.0$/)).toBeGreaterThan(0);
  });
});

describe('"*" with upstream.allowPrivateNetworks: true', () => {
  it('reaches the same private addresses (so the refusals above are the policy, not the test setup)', async () => {
    const proxy = await proxyWith({ allowPrivateNetworks: true }, { 'rebind.example.test': '127.0.0.1' });
    const registries = [...['127.0.0.1', '0x7f.1', '127.1', 'localhost'].map((h) => `${h}:${plain.port}`), `rebind.example.test:${loop.port}`];
    for (const registry of registries) {
      const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/1.0?ns=${encodeURIComponent(registry)}`);
      expect(res.status, registry).toBe(200);
    }
    expect(plain.count('GET', /\/manifests\/1\.0$/)).toBe(4);
  });
});

describe('every redirect hop and token realm is judged like the first connection', () => {
  let proxy: TestProxy;
  const hosts = { 'public.example.test': PUBLIC, 'cdn.example.test': PUBLIC, 'private.example.test': '127.0.0.1' };
  const manifest = '/v2/library/ssrf/manifests/1.0';
  beforeAll(async () => {
    proxy = await proxyWith({}, hosts);
  });

  let tags = 0;
  async function redirectOnce(target: string): Promise<{ status: number; detail: string }> {
    const tag = `r${tags++}`;
    pub.fault({ method: 'GET', path: new RegExp(`/manifests/${tag}$`) }, { kind: 'status', status: 307, headers: { location: target } }, 1);
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/${tag}?ns=public.example.test:${pub.port}`, { headers: { accept: image.mediaType } });
    return { status: res.status, detail: res.status === 200 ? '' : JSON.stringify(ociErrors(res)[0]?.detail) };
  }

  it.each([
    ['an IP literal', () => `http://127.0.0.1:${named.port}${manifest}`],
    ['a loopback name', () => `http://localhost:${named.port}${manifest}`],
    ['a name resolving to loopback', () => `http://private.example.test:${named.port}${manifest}`],
  ])('a public endpoint cannot redirect to %s', async (_what, target) => {
    const before = named.requests().length;
    const got = await redirectOnce(target());
    expect(got.status).toBe(503);
    expect(got.detail).toMatch(/private address/);
    expect(named.requests().length).toBe(before);
  });

  it('a public endpoint may redirect to another public host; only http(s), at most 5 hops', async () => {
    expect((await redirectOnce(`http://cdn.example.test:${pub2.port}/v2/library/ssrf/manifests/${image.manifestDigest}`)).status).toBe(200);
    expect(pub2.count('GET', new RegExp(`/manifests/${image.manifestDigest}$`))).toBe(1);
    expect((await redirectOnce('ftp://cdn.example.test/x')).detail).toMatch(/redirect to ftp:/);
    pub2.fault({ path: /\/hop$/ }, { kind: 'status', status: 302, headers: { location: `http://cdn.example.test:${pub2.port}/hop` } });
    expect((await redirectOnce(`http://cdn.example.test:${pub2.port}/hop`)).detail).toMatch(/more than 5 redirects/);
    pub2.clearFaults();
  });

  it('a public endpoint\'s token realm on a private address is never asked', async () => {
    const tag = `r${tags++}`;
    pub.fault({ path: new RegExp(`/manifests/${tag}$`) }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="https://localhost:${loop.port}/token",service="x"` } }, 1);
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/${tag}?ns=public.example.test:${pub.port}`);
    expect(res.status).toBe(503);
    expect(JSON.stringify(ociErrors(res)[0]?.detail)).toMatch(/private address/);
    expect(loop.count('GET', /\/token/)).toBe(0);
  });

  it('an endpoint the config names on a private address may redirect to another private address', async () => {
    named.fault({ method: 'GET', path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 307, headers: { location: `http://localhost:${plain.port}/v2/library/ssrf/manifests/${image.manifestDigest}` } }, 1);
    const res = await fetchFrom(proxy.url, `/v2/library/ssrf/manifests/1.0?ns=127.0.0.1:${named.port}`, { headers: { accept: image.mediaType } });
    expect(res.status).toBe(200);
    expect(plain.count('GET', new RegExp(`/manifests/${image.manifestDigest}$`))).toBe(1);
  });
});
