// Issue 8 rule 4: credentials go only where they belong. A 401 from a host a redirect led to is never answered with
// the endpoint's credentials; a token realm must be https when the endpoint is; a realm on another origin gets
// neither insecure_skip_verify nor the client certificate.
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, ociErrors, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { generateSelfSignedCert, startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'cred-user';
const PASSWORD = 'cred-s3cret';
const creds = { auth: { username: USER, password: PASSWORD } };

let image: BuiltImage;
let tokens: TokenServer;
let dir: string;
const closers: (() => Promise<unknown>)[] = [];
const proxies: TestProxy[] = [];

async function upstream(opts: { tls?: boolean } = {}): Promise<FaultUpstream> {
  const u = await startFaultUpstream(opts);
  u.add('library/creds', '1.0', image);
  closers.push(() => u.close());
  return u;
}

async function proxyFor(config: Record<string, unknown>): Promise<TestProxy> {
  const p = await startTestProxy(config);
  proxies.push(p);
  return p;
}

/** What the token server heard with our user's credentials (Basic or the password form). */
const leakedTo = (t: TokenServer) => t.requests().filter((r) => r.user === USER);

beforeAll(async () => {
  image = await buildImage({ format: 'oci', label: 'credentials' });
  tokens = await startTokenServer({ users: { [USER]: PASSWORD }, allowAnonymousPull: true });
  dir = makeTmpDir('ocimirror-creds-');
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([...proxies.map((p) => p.close()), ...closers.map((c) => c()), tokens?.close()]);
  await removeTmpDir(dir);
});

describe('a 401 from a redirect target', () => {
  it('is not answered with the endpoint\'s credentials, neither Basic nor through its Bearer realm', async () => {
    const [a, b] = [await upstream(), await upstream()];
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [a.url] } }, configs: { [a.host]: creds } });
    a.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 307, headers: { location: `${b.url}/v2/library/creds/manifests/1.0` } });
    b.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${tokens.realm}",service="b"` } });
    const res = await fetchFrom(p.url, '/v2/library/creds/manifests/1.0');
    expect(res.status).toBe(503);
    expect(b.requests().length).toBeGreaterThan(0);
    expect(leakedTo(tokens)).toEqual([]);
    expect(b.requests().map((r) => r.headers.authorization).filter(Boolean)).toEqual([]);

    b.clearFaults();
    b.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="b"' } });
    expect((await fetchFrom(p.url, '/v2/library/creds/manifests/1.0')).status).toBe(503);
    expect(b.requests().map((r) => r.headers.authorization).filter(Boolean)).toEqual([]);
  });

  it('while the endpoint\'s own challenge is answered with them (the check above can fail)', async () => {
    const a = await upstream();
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [a.url] } }, configs: { [a.host]: creds } });
    a.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${tokens.realm}",service="a"` } }, 1);
    expect((await fetchFrom(p.url, '/v2/library/creds/manifests/1.0')).status).toBe(200);
    expect(leakedTo(tokens).length).toBeGreaterThan(0);
  });
});

describe('token realms', () => {
  it('an https endpoint\'s plain-http realm gets nothing, credentials least of all', async () => {
    const before = tokens.requests().length;
    const a = await upstream({ tls: true });
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [a.url] } }, configs: { [a.host]: { ...creds, tls: { ca_file: a.caFile } } } });
    a.fault({ path: /\/manifests\// }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${tokens.realm}",service="a"` } });
    const res = await fetchFrom(p.url, '/v2/library/creds/manifests/1.0');
    expect(res.status).toBe(503);
    expect(JSON.stringify(ociErrors(res)[0]?.detail)).toMatch(/plain http/);
    expect(tokens.requests().length).toBe(before);
  });

  it('a realm on another origin does not inherit insecure_skip_verify', async () => {
    const [a, realm] = [await upstream({ tls: true }), await upstream({ tls: true })];
    const p = await proxyFor({ mirrors: { 'docker.io': { endpoint: [a.url] } }, configs: { [a.host]: { ...creds, tls: { insecure_skip_verify: true } } } });
    a.fault({ path: /\/manifests\// }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${realm.url}/token",service="a"` } });
    const res = await fetchFrom(p.url, '/v2/library/creds/manifests/1.0');
    expect(res.status).toBe(503);
    expect(realm.count('GET', /\/token/)).toBe(0);
  });

  it('a realm on another origin gets no client certificate, though it trusts the endpoint\'s CA', async () => {
    const certDirs = [makeTmpDir('ocimirror-realm-cert-'), makeTmpDir('ocimirror-client-cert-')];
    closers.push(() => Promise.all(certDirs.map((d) => removeTmpDir(d))));
    const realmCert = generateSelfSignedCert(certDirs[0] as string, 'realm');
    const clientCert = generateSelfSignedCert(certDirs[1] as string, 'client');
    const presented: boolean[] = [];
    const realm = https.createServer({ cert: realmCert.cert, key: realmCert.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      presented.push(Object.keys((req.socket as TLSSocket).getPeerCertificate()).length > 0);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'realm-token', expires_in: 300 }));
    });
    await new Promise<void>((resolve) => realm.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => { realm.closeAllConnections(); realm.close(resolve); }));
    const a = await upstream({ tls: true });
    const bundle = join(dir, 'ca-bundle.pem');
    writeFileSync(bundle, `${a.ca}\n${realmCert.cert}`);
    const p = await proxyFor({
      mirrors: { 'docker.io': { endpoint: [a.url] } },
      configs: { [a.host]: { ...creds, tls: { ca_file: bundle, cert_file: clientCert.certFile, key_file: clientCert.keyFile } } },
    });
    const port = (realm.address() as { port: number }).port;
    a.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="https://localhost:${port}/token",service="a"` } }, 1);
    expect((await fetchFrom(p.url, '/v2/library/creds/manifests/1.0')).status).toBe(200);
    expect(presented).toEqual([false]);
    expect(a.requests().at(-1)?.headers.authorization).toBe('Bearer realm-token');
  });
});

describe('configs."*" under a "*" mirror', () => {
  it('lends its credentials to endpoints the config names, never to a registry a client named', async () => {
    const [named, chosen] = [await upstream(), await upstream({ tls: true })];
    const p = await startTestProxy({
      upstream: { allowPrivateNetworks: true },
      mirrors: { '*': { endpoint: [] }, 'docker.io': { endpoint: [named.url] } },
      configs: { '*': { ...creds, tls: { insecure_skip_verify: true } } },
    }, { network: { hosts: { 'chosen.example.test': '127.0.0.1' } } });
    proxies.push(p);
    for (const u of [named, chosen]) u.fault({ path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="x"' } }, 1);
    expect((await fetchFrom(p.url, '/v2/library/creds/manifests/1.0?ns=docker.io')).status).toBe(200);
    expect(named.requests().map((r) => r.headers.authorization).filter(Boolean).length).toBeGreaterThan(0);
    // The client-named registry's own endpoint trusts configs."*".tls (the self-signed certificate) but gets no password.
    expect((await fetchFrom(p.url, `/v2/library/creds/manifests/1.0?ns=chosen.example.test:${chosen.port}`)).status).toBe(503);
    expect(chosen.requests().length).toBeGreaterThan(0);
    expect(chosen.requests().map((r) => r.headers.authorization).filter(Boolean)).toEqual([]);
  });
});
