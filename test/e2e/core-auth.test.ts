// Upstream authentication against real Distribution: htpasswd Basic and the token flow (with credentials and
// anonymous); credentials go only to the endpoint they are configured for, never across a redirect, never to logs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, ociErrors, pullThrough, startTestProxy, type ProxyConfigInput, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';

const PASSWORD = 'auth-test-s3cret';
let basicDist: Distribution;
let tokenDist: Distribution;
const proxies: TestProxy[] = [];
const built = new Map<string, BuiltImage>();

async function image(dist: Distribution, repo: string): Promise<BuiltImage> {
  const img = await buildImage({ format: 'docker', label: `auth ${repo} ${dist.port}` });
  await pushImage(dist.url, repo, '1.0', img, { username: dist.username!, password: dist.password! });
  built.set(`${dist.port}/${repo}`, img);
  return img;
}

async function proxyFor(config: ProxyConfigInput): Promise<TestProxy> {
  const p = await startTestProxy(config);
  proxies.push(p);
  return p;
}

/** No password, no Basic value and no Bearer token in anything the proxy logged. */
function expectCleanLogs(p: TestProxy, user = 'tester'): void {
  const text = p.logText();
  expect(text).not.toContain(PASSWORD);
  expect(text).not.toContain(Buffer.from(`${user}:${PASSWORD}`).toString('base64'));
  expect(text).not.toMatch(/Basic [A-Za-z0-9+/=]{8,}/);
  expect(text).not.toMatch(/Bearer [A-Za-z0-9._-]{8,}/);
}

beforeAll(async () => {
  [basicDist, tokenDist] = await Promise.all([
    startDistribution({ auth: 'htpasswd', password: PASSWORD }), startDistribution({ auth: 'token', password: PASSWORD }),
  ]);
}, 60_000);

afterEach(async () => {
  await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await Promise.allSettled([basicDist?.close(), tokenDist?.close()]);
});

describe('htpasswd Basic auth', () => {
  it('pulls with configs.<host>.auth username/password', async () => {
    const img = await image(basicDist, 'library/basic');
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [basicDist.url] } }, configs: { [basicDist.host]: { auth: { username: 'tester', password: PASSWORD } } } });
    expect((await pullThrough(p.url, 'library/basic', '1.0', { ns: 'docker.io' })).digest).toBe(img.manifestDigest);
    expectCleanLogs(p);
  }, 30_000);

  it('pulls with the base64 auth form', async () => {
    const img = await image(basicDist, 'library/basic64');
    const auth = Buffer.from(`tester:${PASSWORD}`).toString('base64');
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [basicDist.url] } }, configs: { [basicDist.host]: { auth: { auth } } } });
    expect((await pullThrough(p.url, 'library/basic64', '1.0', { ns: 'docker.io' })).digest).toBe(img.manifestDigest);
    expectCleanLogs(p);
  }, 30_000);

  it('without credentials the registry\'s 401 is an outage (503), not a 404', async () => {
    await image(basicDist, 'library/nocreds');
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [basicDist.url] } } });
    const res = await fetchFrom(p.url, '/v2/library/nocreds/manifests/1.0?ns=docker.io');
    expect(res.status).toBe(503);
    expect(JSON.stringify(ociErrors(res)[0]?.detail)).toMatch(/HTTP 401/);
  });

  it('wrong credentials → 503 naming the 401, and the wrong password is not logged either', async () => {
    await image(basicDist, 'library/wrongcreds');
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [basicDist.url] } }, configs: { [basicDist.host]: { auth: { username: 'tester', password: `${PASSWORD}-wrong` } } } });
    const res = await fetchFrom(p.url, '/v2/library/wrongcreds/manifests/1.0?ns=docker.io');
    expect(res.status).toBe(503);
    expect(res.body.toString()).not.toContain(PASSWORD);
    expectCleanLogs(p);
  });
});

describe('token auth', () => {
  it('with credentials: the token server saw the configured user', async () => {
    const img = await image(tokenDist, 'private/app');
    const before = tokenDist.token!.requests().length;
    const p = await proxyFor({ mirrors: { [tokenDist.host]: { endpoint: [tokenDist.url] } }, configs: { [tokenDist.host]: { auth: { username: 'tester', password: PASSWORD } } } });
    expect((await pullThrough(p.url, 'private/app', '1.0', { ns: tokenDist.host })).digest).toBe(img.manifestDigest);
    const seen = tokenDist.token!.requests().slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.user === 'tester')).toBe(true);
    expect(seen.map((r) => r.scope)).toContain('repository:private/app:pull');
    // Tokens are cached per scope: one pull does not fetch a token per request.
    expect(seen.length).toBeLessThanOrEqual(2);
    expectCleanLogs(p);
  }, 30_000);

  it('anonymous pull through the token flow', async () => {
    const img = await image(tokenDist, 'public/app');
    const before = tokenDist.token!.requests().length;
    const p = await proxyFor({ mirrors: { [tokenDist.host]: { endpoint: [tokenDist.url] } } });
    expect((await pullThrough(p.url, `${tokenDist.host}/public/app`, '1.0')).digest).toBe(img.manifestDigest);
    const seen = tokenDist.token!.requests().slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.user === undefined)).toBe(true);
    expectCleanLogs(p);
  }, 30_000);
});

describe('credentials stay with their endpoint', () => {
  let other: FaultUpstream;
  let target: FaultUpstream;
  beforeAll(async () => { [other, target] = await Promise.all([startFaultUpstream(), startFaultUpstream()]); });
  afterAll(async () => { await Promise.allSettled([other?.close(), target?.close()]); });

  it('an endpoint without configs never receives another endpoint\'s credentials, even when it asks for them', async () => {
    const img = await image(basicDist, 'library/twoendpoints');
    other.fault({ path: /^\/v2\/.+/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="phish"' } });
    const p = await proxyFor({
      mirrors: { 'docker.io': { endpoint: [other.url, basicDist.url] } },
      configs: { [basicDist.host]: { auth: { username: 'tester', password: PASSWORD } } },
    });
    expect((await pullThrough(p.url, 'library/twoendpoints', '1.0', { ns: 'docker.io' })).digest).toBe(img.manifestDigest);
    const asked = other.requests();
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.map((r) => r.headers.authorization).filter((a) => a !== undefined)).toEqual([]);
    other.clearFaults();
  }, 30_000);

  it('a redirect to another host drops Authorization', async () => {
    const origin = await startFaultUpstream();
    try {
      const img = await buildImage({ format: 'oci', label: 'redirected' });
      origin.add('library/redir', '1.0', img);
      target.add('library/redir', '1.0', img);
      const path = '/v2/library/redir/manifests/1.0';
      origin.fault({ path: /^\/v2\/library\/redir\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="origin"' } }, 1);
      origin.fault({ path: /^\/v2\/library\/redir\/manifests\/1\.0$/ }, { kind: 'status', status: 307, headers: { location: `${target.url}${path}` } });
      const p = await proxyFor({
        cache: { tagTtl: '0s' },
        mirrors: { 'docker.io': { endpoint: [origin.url] } },
        configs: { [origin.host]: { auth: { username: 'tester', password: PASSWORD } } },
      });
      const res = await fetchFrom(p.url, '/v2/library/redir/manifests/1.0?ns=docker.io');
      expect(res.status).toBe(200);
      expect(res.body.equals(img.manifest)).toBe(true);
      const basic = `Basic ${Buffer.from(`tester:${PASSWORD}`).toString('base64')}`;
      // The origin got its credentials after its challenge, answered 307 …
      expect(origin.requests().filter((r) => r.path === path).map((r) => r.headers.authorization)).toContain(basic);
      // … and the other host got the request without them.
      const followed = target.requests().filter((r) => r.path === path);
      expect(followed.length).toBeGreaterThan(0);
      expect(followed.map((r) => r.headers.authorization)).toEqual(followed.map(() => undefined));
      expectCleanLogs(p);
    } finally {
      await origin.close();
    }
  }, 30_000);
});
