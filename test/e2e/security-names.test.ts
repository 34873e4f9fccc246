// Issue 8 rule 2: only configured names are served. Names that an object inherits ("constructor", "toString",
// "__proto__", ...) are refused before any DNS query or connection: the proxy's resolver sees no lookup and the
// configured endpoint sees no request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, ociErrors, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';

const INHERITED = [
  'constructor', 'toString', 'toLocaleString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable',
  '__proto__', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__',
];

let upstream: FaultUpstream;
let image: BuiltImage;
let proxy: TestProxy;

beforeAll(async () => {
  upstream = await startFaultUpstream();
  image = await buildImage({ format: 'oci', label: 'names' });
  upstream.add('library/names', '1.0', image);
  proxy = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [upstream.url] } } });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), upstream?.close()]);
});

describe('names an object inherits are not configured registries', () => {
  it.each(INHERITED)('?ns=%s is refused with a 4xx before any lookup or connection', async (name) => {
    const before = upstream.requests().length;
    const res = await fetchFrom(proxy.url, `/v2/library/names/manifests/1.0?ns=${encodeURIComponent(name)}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(['NAME_UNKNOWN', 'NAME_INVALID']).toContain(ociErrors(res)[0]?.code);
    expect(upstream.requests().length).toBe(before);
    expect(proxy.network.lookups).toEqual([]);
  });

  it.each(INHERITED.filter((n) => /^[a-z0-9]+$/i.test(n)))('a path prefix %s:5000 is refused the same way', async (name) => {
    const res = await fetchFrom(proxy.url, `/v2/${name}:5000/library/names/manifests/1.0`);
    expect(res.status).toBe(404);
    expect(ociErrors(res)[0]?.code).toBe('NAME_UNKNOWN');
    expect(proxy.network.lookups).toEqual([]);
  });

  it('the configured registry is still served (the test above can see a request when one is made)', async () => {
    const got = await pullThrough(proxy.url, 'library/names', '1.0', { ns: 'docker.io' });
    expect(got.digest).toBe(image.manifestDigest);
    expect(upstream.count('HEAD', /\/manifests\/1\.0$/)).toBe(1);
  });
});

describe('the configuration has no inherited entries either', () => {
  it('mirrors and configs are null-prototype maps: "__proto__" and "constructor" are plain keys', () => {
    const config = parseConfig('c.yaml', [
      'mirrors:', '  docker.io: {endpoint: ["https://a.example"]}',
      'configs:', '  "__proto__": {auth: {username: u, password: p}}', '  constructor: {tls: {insecure_skip_verify: true}}',
    ].join('\n'));
    expect(Object.getPrototypeOf(config.mirrors)).toBeNull();
    expect(Object.getPrototypeOf(config.configs)).toBeNull();
    expect(Object.keys(config.configs)).toEqual(['__proto__', 'constructor']);
    // An inherited lookup would have handed these credentials to every host.
    expect((config.configs as Record<string, unknown>)['a.example']).toBeUndefined();
    expect((config.mirrors as Record<string, unknown>).toString).toBeUndefined();
  });
});
