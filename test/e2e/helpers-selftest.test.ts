import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request, type Dispatcher } from 'undici';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startBlackhole, startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, buildIndex, buildLargeLayerImage, sha256, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { pushImage, pushIndex, RegistrySession } from '../helpers/push.js';
import { deadPort } from '../helpers/ports.js';
import { makeTmpDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

async function getManifest(session: RegistrySession, repo: string, ref: string) {
  const res = await session.send('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT }, expect: [200] });
  return { body: Buffer.from(await res.body.arrayBuffer()), digest: res.headers['docker-content-digest'], type: res.headers['content-type'] };
}

/** Streams a blob and returns the sha256 of what arrived, so a 50 MB layer is never buffered. */
async function blobDigest(session: RegistrySession, repo: string, digest: string): Promise<string> {
  const res = await session.send('GET', `/v2/${repo}/blobs/${digest}`, { expect: [200] });
  const hash = crypto.createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

async function expectImage(session: RegistrySession, repo: string, ref: string, image: BuiltImage): Promise<void> {
  const got = await getManifest(session, repo, ref);
  expect(got.body.equals(image.manifest)).toBe(true);
  expect(got.digest).toBe(image.manifestDigest);
  expect(got.type).toBe(image.mediaType);
  for (const blob of image.blobs) expect(await blobDigest(session, repo, blob.digest)).toBe(blob.digest);
}

async function expectIndex(session: RegistrySession, repo: string, ref: string, index: BuiltIndex): Promise<void> {
  const got = await getManifest(session, repo, ref);
  expect(got.body.equals(index.manifest)).toBe(true);
  expect(got.digest).toBe(index.manifestDigest);
  for (const { image } of index.images) await expectImage(session, repo, image.manifestDigest, image);
}

async function skopeoRaw(host: string, ref: string, creds?: string): Promise<Buffer> {
  const args = ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${host}/${ref}`];
  const { stdout } = await run('skopeo', args, { encoding: 'buffer', timeout: 30_000 });
  return stdout;
}

let oci: BuiltImage, docker: BuiltImage, large: BuiltImage, ociIndex: BuiltIndex, dockerList: BuiltIndex;

beforeAll(async () => {
  oci = await buildImage({ format: 'oci' });
  docker = await buildImage({ format: 'docker' });
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];
  ociIndex = await buildIndex({ format: 'oci', platforms });
  dockerList = await buildIndex({ format: 'docker', platforms });
  large = await buildLargeLayerImage({ format: 'oci', sizeBytes: 50 * 1024 * 1024, seed: 7, dir: makeTmpDir() });
}, 60_000);

describe('test helpers against real CNCF Distribution', () => {
  let plain: Distribution, basic: Distribution, token: Distribution;

  beforeAll(async () => {
    [plain, basic, token] = await Promise.all([
      startDistribution(), startDistribution({ auth: 'htpasswd' }), startDistribution({ auth: 'token' }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([plain?.close(), basic?.close(), token?.close()]);
  });

  it('builds reproducible images with the expected media types', async () => {
    expect((await buildImage({ format: 'oci' })).manifestDigest).toBe(oci.manifestDigest);
    expect(oci.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(docker.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(dockerList.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(oci.layers).toHaveLength(2);
    expect(sha256(oci.manifest)).toBe(oci.manifestDigest);
    const config = JSON.parse(oci.config.data!.toString()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toHaveLength(2);
    expect(large.layers[0]!.size).toBeGreaterThan(50 * 1024 * 1024);
  });

  it('pushes and reads back images, an index, a manifest list and a 50 MB layer (no auth)', async () => {
    await pushImage(plain.url, 'library/small', 'oci', oci);
    await pushImage(plain.url, 'library/small', 'docker', docker);
    await pushIndex(plain.url, 'library/multi', 'oci', ociIndex);
    await pushIndex(plain.url, 'library/multi', 'docker', dockerList);
    await pushImage(plain.url, 'big/layer', '1.0', large);
    const session = new RegistrySession(plain.url);
    await expectImage(session, 'library/small', 'oci', oci);
    await expectImage(session, 'library/small', 'docker', docker);
    await expectIndex(session, 'library/multi', 'oci', ociIndex);
    await expectIndex(session, 'library/multi', 'docker', dockerList);
    await expectImage(session, 'big/layer', '1.0', large);
  }, 60_000);

  it('counts requests from the access log', async () => {
    plain.resetLog();
    const session = new RegistrySession(plain.url);
    await expectImage(session, 'library/small', 'oci', oci);
    await plain.flushLog();
    expect(plain.count('GET', /^\/v2\/library\/small\/manifests\/oci$/)).toBe(1);
    expect(plain.count('GET', /^\/v2\/library\/small\/blobs\/sha256:/)).toBe(3);
    const manifestLine = plain.accessLog().find((l) => l.path.endsWith('/manifests/oci'));
    expect(manifestLine).toMatchObject({ method: 'GET', status: 200, bytes: oci.manifest.length });
  }, 60_000);

  it('agrees with skopeo on the manifest bytes', async () => {
    expect((await skopeoRaw(plain.host, 'library/small:docker')).equals(docker.manifest)).toBe(true);
    expect((await skopeoRaw(plain.host, 'library/multi:oci')).equals(ociIndex.manifest)).toBe(true);
  }, 60_000);

  it('keeps data and port across stop() and start()', async () => {
    const { port } = plain;
    await plain.stop();
    await expect(request(`${plain.url}/v2/`)).rejects.toThrow();
    await plain.start();
    expect(plain.port).toBe(port);
    await expectImage(new RegistrySession(plain.url), 'library/small', 'oci', oci);
  }, 60_000);

  it('pushes and pulls with htpasswd Basic auth and refuses anonymous pulls', async () => {
    const creds = { username: basic.username!, password: basic.password! };
    await expect(pushImage(basic.url, 'private/app', '1', oci)).rejects.toThrow(/Basic auth but no credentials/);
    await pushImage(basic.url, 'private/app', '1', oci, creds);
    await expectImage(new RegistrySession(basic.url, creds), 'private/app', '1', oci);
    const anonymous = await request(`${basic.url}/v2/private/app/manifests/1`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm=/);
    const raw = await skopeoRaw(basic.host, 'private/app:1', `${creds.username}:${creds.password}`);
    expect(raw.equals(oci.manifest)).toBe(true);
  }, 60_000);

  it('pushes through the token flow and serves anonymous token pulls', async () => {
    const server = token.token!;
    const creds = { username: token.username!, password: token.password! };
    await expect(pushImage(token.url, 'team/app', '1', docker)).rejects.toThrow(/401/);
    await pushIndex(token.url, 'team/app', 'multi', dockerList, creds);
    await expectIndex(new RegistrySession(token.url), 'team/app', 'multi', dockerList);
    expect((await skopeoRaw(token.host, 'team/app:multi')).equals(dockerList.manifest)).toBe(true);
    const seen = server.requests();
    expect(seen.some((r) => r.user === creds.username && r.scope === 'repository:team/app:pull,push')).toBe(true);
    expect(seen.some((r) => r.user === undefined && r.method === 'GET' && r.scope === 'repository:team/app:pull,push')).toBe(true);
    expect(seen.every((r) => r.service === server.service && r.host === new URL(server.url).host)).toBe(true);
  }, 60_000);

  it('issues tokens for the POST password and refresh_token grants', async () => {
    const server = token.token!;
    const form = (fields: Record<string, string>) => ({
      method: 'POST' as const, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString(),
    });
    const scope = 'repository:team/app:pull';
    const first = await request(server.realm, form({ grant_type: 'password', service: server.service, scope, username: token.username!, password: token.password!, client_id: 'selftest' }));
    const granted = (await first.body.json()) as { access_token: string; refresh_token: string };
    const refreshed = await request(server.realm, form({ grant_type: 'refresh_token', service: server.service, scope, refresh_token: granted.refresh_token, client_id: 'selftest' }));
    const again = (await refreshed.body.json()) as { access_token: string };
    for (const accessToken of [granted.access_token, again.access_token]) {
      const res = await request(`${token.url}/v2/team/app/manifests/multi`, { headers: { authorization: `Bearer ${accessToken}`, accept: ACCEPT } });
      expect(Buffer.from(await res.body.arrayBuffer()).equals(dockerList.manifest)).toBe(true);
    }
    const bad = await request(server.realm, form({ grant_type: 'password', service: server.service, scope, username: token.username!, password: 'wrong' }));
    await bad.body.dump();
    expect(bad.statusCode).toBe(401);
    expect(server.requests().filter((r) => r.method === 'POST').map((r) => r.grantType)).toEqual(['password', 'refresh_token', 'password']);
  }, 60_000);
});

/** Reads a body until it ends or fails; returns the bytes that arrived and the error, if any. */
async function drain(res: Dispatcher.ResponseData): Promise<{ data: Buffer; error?: { code?: string } }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks) };
  } catch (error) {
    return { data: Buffer.concat(chunks), error: error as { code?: string } };
  }
}

describe('fault upstream', () => {
  let up: FaultUpstream;
  const blobPath = (digest: string) => `/v2/big/layer/blobs/${digest}`;
  const smallLayer = () => oci.layers[0]!;

  beforeAll(async () => {
    up = await startFaultUpstream();
    up.add('library/small', '1.0', oci);
    up.add('library/small', '2.0', docker);
    up.add('library/multi', '1.0', ociIndex);
    up.add('big/layer', '1.0', large);
  });
  afterEach(() => up.clearFaults());
  afterAll(async () => up?.close());

  it('speaks the registry API: ping, manifests, HEAD, blobs, ranges, tags, error JSON', async () => {
    const ping = await request(`${up.url}/v2/`);
    expect([ping.statusCode, await ping.body.text()]).toEqual([200, '{}']);
    const head = await request(`${up.url}/v2/library/small/manifests/1.0`, { method: 'HEAD' });
    await head.body.dump();
    expect(head.headers).toMatchObject({
      'docker-content-digest': oci.manifestDigest, 'content-type': oci.mediaType, 'content-length': String(oci.manifest.length),
    });
    const session = new RegistrySession(up.url);
    await expectIndex(session, 'library/multi', '1.0', ociIndex);
    await expectImage(session, 'big/layer', '1.0', large);
    const layer = smallLayer();
    const ranged = await request(`${up.url}/v2/library/small/blobs/${layer.digest}`, { headers: { range: 'bytes=10-19' } });
    expect(ranged.statusCode).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 10-19/${layer.size}`);
    expect(Buffer.from(await ranged.body.arrayBuffer()).equals(layer.data!.subarray(10, 20))).toBe(true);
    const unsatisfiable = await request(`${up.url}/v2/library/small/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size}-` } });
    await unsatisfiable.body.dump();
    expect(unsatisfiable.statusCode).toBe(416);
    const tags = await request(`${up.url}/v2/library/small/tags/list?n=1`);
    expect(await tags.body.json()).toEqual({ name: 'library/small', tags: ['1.0'] });
    expect(tags.headers.link).toBe('</v2/library/small/tags/list?n=1&last=1.0>; rel="next"');
    const missing = await request(`${up.url}/v2/library/small/manifests/nope`);
    expect(missing.statusCode).toBe(404);
    expect(await missing.body.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    expect(up.count('HEAD', /\/manifests\/1\.0$/)).toBe(1);
  }, 60_000);

  it('is readable by real clients: skopeo and Distribution in proxy mode', async () => {
    expect((await skopeoRaw(up.host, 'library/small:2.0')).equals(docker.manifest)).toBe(true);
    const proxy = await startDistribution({ proxyRemoteUrl: up.url });
    try {
      await expectImage(new RegistrySession(proxy.url), 'library/small', '1.0', oci);
      expect(up.count('GET', new RegExp(`/blobs/${smallLayer().digest}$`))).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('injects statuses, a limited number of times', async () => {
    up.fault({ method: 'GET', path: /\/manifests\/1\.0$/ }, { kind: 'status', status: 500 }, 1);
    up.fault({ path: /\/tags\/list/ }, { kind: 'status', status: 429, headers: { 'retry-after': '7' } });
    up.fault({ method: 'HEAD', path: /\/blobs\// }, { kind: 'status', status: 404 });
    const head = await request(`${up.url}/v2/library/small/blobs/${smallLayer().digest}`, { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(404);
    const statuses = [];
    for (let i = 0; i < 2; i++) {
      const res = await request(`${up.url}/v2/library/small/manifests/1.0`);
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([500, 200]);
    const limited = await request(`${up.url}/v2/library/small/tags/list`);
    expect([limited.statusCode, limited.headers['retry-after']]).toEqual([429, '7']);
    expect(await limited.body.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
  }, 60_000);

  it('stalls before headers and in the middle of a body', async () => {
    up.fault({ path: /\/manifests\// }, { kind: 'stall-headers' });
    await expect(request(`${up.url}/v2/library/small/manifests/1.0`, { headersTimeout: 300 }))
      .rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    up.fault({ path: /\/blobs\// }, { kind: 'stall-body', afterBytes: 100_000 });
    const res = await request(`${up.url}${blobPath(large.layers[0]!.digest)}`, { bodyTimeout: 300 });
    expect(res.headers['content-length']).toBe(String(large.layers[0]!.size));
    const { data, error } = await drain(res);
    expect([data.length, error?.code]).toEqual([100_000, 'UND_ERR_BODY_TIMEOUT']);
  }, 60_000);

  it('resets the connection after some bytes', async () => {
    up.fault({ path: /\/blobs\// }, { kind: 'reset-body', afterBytes: 65_536 }, 1);
    const { data, error } = await drain(await request(`${up.url}${blobPath(large.layers[0]!.digest)}`));
    expect(error).toBeDefined();
    expect(data.length).toBeLessThanOrEqual(65_536);
    expect(await blobDigest(new RegistrySession(up.url), 'big/layer', large.layers[0]!.digest)).toBe(large.layers[0]!.digest);
  }, 60_000);

  it('corrupts one byte and ignores Range on request', async () => {
    const layer = smallLayer();
    up.fault({ path: /\/blobs\// }, { kind: 'corrupt', atByte: 5 }, 1);
    const corrupted = Buffer.from(await (await request(`${up.url}/v2/library/small/blobs/${layer.digest}`)).body.arrayBuffer());
    expect(corrupted.length).toBe(layer.size);
    expect(sha256(corrupted)).not.toBe(layer.digest);
    expect([...corrupted].filter((b, i) => b !== layer.data![i])).toHaveLength(1);
    up.fault({ path: /\/blobs\// }, { kind: 'ignore-range' });
    const res = await request(`${up.url}/v2/library/small/blobs/${layer.digest}`, { headers: { range: 'bytes=10-' } });
    expect(res.statusCode).toBe(200);
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(layer.digest);
  }, 60_000);

  it('serves TLS with its own CA; blackholes time out; dead ports refuse', async () => {
    const tlsUp = await startFaultUpstream({ tls: true });
    const tlsHole = await startBlackhole({ tls: true });
    const plainHole = await startBlackhole();
    const trusting = new Agent({ connect: { ca: tlsUp.ca } });
    const impatient = new Agent({ connect: { timeout: 300 } });
    try {
      tlsUp.add('library/small', '1.0', oci);
      expect(tlsUp.url).toMatch(/^https:\/\//);
      const res = await request(`${tlsUp.url}/v2/library/small/manifests/1.0`, { dispatcher: trusting });
      expect(Buffer.from(await res.body.arrayBuffer()).equals(oci.manifest)).toBe(true);
      expect((await skopeoRaw(tlsUp.host, 'library/small:1.0')).equals(oci.manifest)).toBe(true);
      await expect(request(`${tlsHole.url}/v2/`, { dispatcher: impatient })).rejects.toMatchObject({ code: 'UND_ERR_CONNECT_TIMEOUT' });
      await expect(request(`${plainHole.url}/v2/`, { headersTimeout: 300 })).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
      expect([tlsHole.connections(), plainHole.connections()]).toEqual([1, 1]);
      await expect(request(`http://127.0.0.1:${await deadPort()}/v2/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await Promise.all([trusting.close(), impatient.close(), tlsUp.close(), tlsHole.close(), plainHole.close()]);
    }
  }, 60_000);
});
