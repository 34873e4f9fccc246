// Replicas of a cluster (in this process) on a real Ceph RGW bucket and a real Redis, in front of a real
// Distribution, when things go wrong or get full: the internal route refuses the unsigned; cache.store.redirect sends containerd to the bucket with a 307
// (and it follows); Redis stopped mid-run leaves pulls working and /readyz saying so; cache.maxSize holds for the
// bucket across replicas without deleting a blob another replica is reading; and with RGW stopped a cached blob
// answers 503 at once while a miss is served from upstream, uncached. RGW stops last: it is not restarted.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3StoreConfig } from '../../src/config/schema.js';
import { PEER_AUTH_HEADER, signPeerRequest } from '../../src/cluster/peer-auth.js';
import { clusterKeyPrefix } from '../../src/server/cluster.js';
import { startClusterBackends, startReplicaInProcess, type ClusterBackends } from '../helpers/cluster.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { eventually } from '../helpers/eventually.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { fetchFrom, ociErrors, pullThrough, type TestProxy } from '../helpers/proxy.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let backends: ClusterBackends;
let dist: Distribution;
let work: string;
const proxies: TestProxy[] = [];
let containerd: Containerd | undefined;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the cluster degraded-modes test needs root: containerd mounts snapshots');
  work = makeTmpDir('ocimirror-cluster-degraded-');
  [backends, dist] = await Promise.all([startClusterBackends(), startDistribution()]);
}, 180_000);
afterAll(async () => {
  await containerd?.stop();
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled([dist?.close(), backends?.close()]);
  if (work) await removeTmpDir(work);
}, 120_000);

const mirrors = () => ({ 'docker.io': { endpoint: [dist.url] } });

async function replica(cache: Record<string, unknown> = {}): Promise<TestProxy> {
  const p = await startReplicaInProcess(backends, mirrors(), cache);
  proxies.push(p);
  return p;
}

async function pushed(repo: string, image: Promise<BuiltImage>): Promise<BuiltImage> {
  const built = await image;
  await pushImage(dist.url, repo, '1.0', built);
  return built;
}

async function readyz(p: TestProxy): Promise<{ status: number; body: Record<string, { ok: boolean; degraded?: boolean; detail?: string }> }> {
  const res = await fetchFrom(p.url, '/readyz');
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as never };
}

describe('a cluster when parts fail or fill up', () => {
  it('the replicas\' internal route answers only requests signed with the cluster secret', async () => {
    const r = await replica({ store: { prefix: 'auth/' } });
    const path = `/_ocimirror/fills/sha256:${'a'.repeat(64)}`;
    const signed = (secret: string) => ({ headers: { [PEER_AUTH_HEADER]: signPeerRequest(secret, 'GET', path) } });
    expect((await fetchFrom(r.url, path)).status).toBe(401);
    expect((await fetchFrom(r.url, path, signed('not-the-cluster-secret-but-long-enough'))).status).toBe(401);
    // Signed: let in, and told that no fill of that blob runs there.
    const ok = await fetchFrom(r.url, path, signed(backends.env.OCIMIRROR_CLUSTER_SECRET!));
    expect({ status: ok.status, code: ociErrors(ok)[0]?.code }).toEqual({ status: 404, code: 'BLOB_UNKNOWN' });
    expect(r.logText()).not.toContain(backends.env.OCIMIRROR_CLUSTER_SECRET);
  });

  it('cache.store.redirect: warm blob GETs answer 307 to a presigned URL, and containerd follows it', async () => {
    const image = await pushed('library/redirected', buildImage({ format: 'oci', label: 'redirect' }));
    const r = await replica({ store: { redirect: true, prefix: 'redirect/' } });
    // Cold: bytes flow through the replica (nothing to redirect to yet).
    await pullThrough(r.url, 'library/redirected', '1.0');
    const layer = image.layers[0]!;
    const res = await fetchFrom(r.url, `/v2/library/redirected/blobs/${layer.digest}`);
    expect(res.status).toBe(307);
    const location = new URL(String(res.headers.location));
    expect({ origin: location.origin, path: location.pathname, signed: location.searchParams.has('X-Amz-Signature'), cache: res.headers['cache-control'] })
      .toEqual({ origin: backends.rgw.endpoint, path: `/${backends.bucket}/redirect/blobs/sha256/${layer.digest.slice(7)}`, signed: true, cache: 'no-store' });
    expect(r.logText()).not.toContain(backends.rgw.secretAccessKey);

    containerd = await startContainerd();
    writeHostsToml(containerd.hostsDir, 'docker.io', { server: `http://127.0.0.1:${await deadPort()}`, hosts: [{ url: r.url }] });
    expect((await containerd.ctrPull('docker.io/library/redirected:1.0')).digest).toBe(image.manifestDigest);
    const blobGets = r.requests(/\/blobs\//).filter((l) => l.method === 'GET').slice(-image.blobs.length);
    expect(blobGets.map((l) => l.status)).toEqual(image.blobs.map(() => 307));
  }, 180_000);

  it('Redis stopped mid-run: pulls through every replica still succeed, /readyz says degraded and stays 200', async () => {
    const [a, b] = [await replica({ store: { prefix: 'redis/' } }), await replica({ store: { prefix: 'redis/' } })];
    const before = await pushed('library/before', buildImage({ format: 'oci', label: 'before-redis-stop' }));
    const during = await pushed('library/during', buildImage({ format: 'oci', label: 'while-redis-is-down' }));
    expect((await pullThrough(a.url, 'library/before', '1.0')).digest).toBe(before.manifestDigest);
    expect((await readyz(a)).body.cluster).toMatchObject({ ok: true, detail: expect.stringContaining('coordinating') });
    await backends.redis.stop();
    try {
      await eventually(async () => (a.proxy.cluster!.link.up || b.proxy.cluster!.link.up ? undefined : true));
      const [pa, pb] = await Promise.all([pullThrough(a.url, 'library/during', '1.0'), pullThrough(b.url, 'library/during', '1.0')]);
      expect([pa.digest, pb.digest]).toEqual([during.manifestDigest, during.manifestDigest]);
      expect((await pullThrough(b.url, 'library/before', '1.0')).digest).toBe(before.manifestDigest);
      const ready = await readyz(b);
      expect(ready.status).toBe(200);
      expect(ready.body.cluster).toMatchObject({ ok: true, degraded: true, detail: expect.stringContaining('Redis unavailable') });
      expect(b.warnings(/Redis unavailable/).length).toBeGreaterThan(0);
    } finally {
      await backends.redis.start();
    }
    await eventually(async () => (a.proxy.cluster!.link.up ? true : undefined), 30_000);
    expect((await readyz(a)).body.cluster).toEqual({ ok: true, detail: expect.stringContaining('coordinating') });
  }, 120_000);

  it('cache.maxSize holds across replicas, and a blob one replica is reading is deleted only after that read', async () => {
    const limits = { maxSize: '50MiB', store: { prefix: 'evict/' } };
    const [filler, reader] = [await replica(limits), await replica(limits)];
    const layers: Record<string, Blob> = {};
    for (const [name, mib, seed] of [['a', 20, 601], ['b1', 12, 602], ['b2', 12, 603], ['b3', 12, 604], ['c', 12, 605]] as const) {
      layers[name] = (await pushed(`evict/${name}`, buildLargeLayerImage({ format: 'oci', sizeBytes: mib * MiB, seed, compression: 'none', dir: work }))).layers[0]!;
    }
    const url = (p: TestProxy, name: string) => `${p.url}/v2/evict/${name}/blobs/${layers[name]!.digest}`;
    const inBucket = (name: string) => backends.rgw.client().send(new HeadObjectCommand({ Bucket: backends.bucket, Key: `evict/blobs/sha256/${layers[name]!.digest.slice(7)}` })).then(() => true, () => false);
    const fetchWhole = async (p: TestProxy, name: string) => {
      const r = await new BlobClient(url(p, name)).done;
      expect({ name, status: r.status, digest: r.digest }).toEqual({ name, status: 200, digest: layers[name]!.digest });
      await eventually(async () => ((await inBucket(name)) ? true : undefined));
    };
    await fetchWhole(filler, 'a');
    // The other replica reads a, slowly: a is pinned there, and now the least recently used of what follows.
    const slow = new BlobClient(url(reader, 'a'));
    await slow.until(MiB);
    slow.pause();
    for (const name of ['b1', 'b2', 'b3']) await fetchWhole(filler, name);
    // 20 + 3 × 12 MiB > 50 MiB: one entry must go, and it is not a.
    await eventually(async () => ((await inBucket('b1')) ? undefined : true));
    expect(await inBucket('a'), 'a blob being read on another replica must not be deleted').toBe(true);
    expect(slow.received).toBeLessThan(layers.a!.size);
    slow.resume();
    const read = await slow.done;
    expect({ digest: read.digest, bytes: read.bytes, error: read.error }).toEqual({ digest: layers.a!.digest, bytes: layers.a!.size, error: undefined });
    // The next fill pushes the bucket over again; a is no longer read anywhere, and the oldest.
    await fetchWhole(filler, 'c');
    await eventually(async () => ((await inBucket('a')) ? undefined : true), 30_000);
    expect(await Promise.all(['b2', 'b3', 'c'].map(inBucket))).toEqual([true, true, true]);
    const total = await filler.proxy.cluster!.link.client.get(`${clusterKeyPrefix(filler.config.cache.store as S3StoreConfig)}total`);
    expect(Number(total)).toBeLessThanOrEqual(50 * MiB);
  }, 180_000);

  it('RGW stopped: a cached blob answers 503 at once, a miss is served from upstream uncached, /readyz says degraded', async () => {
    const r = await replica({ store: { prefix: 's3down/' } });
    const cached = await pushed('library/cached', buildImage({ format: 'oci', label: 's3-cached' }));
    const missed = await pushed('library/missed', buildLargeLayerImage({ format: 'oci', sizeBytes: 12 * MiB, seed: 701, compression: 'none', dir: work }));
    await pullThrough(r.url, 'library/cached', '1.0');
    await backends.rgw.stop();
    const warm = await fetchFrom(r.url, `/v2/library/cached/blobs/${cached.layers[0]!.digest}`);
    expect({ status: warm.status, code: ociErrors(warm)[0]?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    const layer = missed.layers[0]!;
    const cold = await new BlobClient(`${r.url}/v2/library/missed/blobs/${layer.digest}`).done;
    expect({ status: cold.status, digest: cold.digest, bytes: cold.bytes, error: cold.error }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
    // The client has its last byte once the digest matched; storing fails behind it.
    await eventually(async () => (r.logs().some((l) => l.msg === 'could not store a verified blob; served uncached' && l.digest === layer.digest) ? true : undefined));
    const ready = await readyz(r);
    expect({ status: ready.status, store: ready.body.store }).toMatchObject({ status: 200, store: { ok: true, degraded: true } });
  }, 120_000);
});
