// Three ocimirror replicas as separate processes on one Ceph RGW bucket and one Redis, in front of a real
// Distribution (behind a rate-limited link, so fills are still running when the test acts): 30 concurrent cold
// pulls spread over them (skopeo, ctr and CRI among them) make exactly one upstream GET per blob; a 4th replica
// started afterwards serves the image with the upstream stopped; and when the replica owning a fill is killed
// (kill -9) mid-way through a 200 MiB layer, the client streaming it through another replica gets an error, and
// its retry succeeds with at most two upstream GETs for that blob.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterBackends, startReplicaProcess, type ClusterBackends } from '../helpers/cluster.js';
import { startContainerd, CRI_NAMESPACE, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildLargeLayerImage, type BuiltImage } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { pullThrough } from '../helpers/proxy.js';
import { BlobClient, type ProxyProcess } from '../helpers/proxy-process.js';
import { pushImage } from '../helpers/push.js';
import { skopeoCopyToOci } from '../helpers/skopeo.js';
import { startSlowLink, type SlowLink } from '../helpers/slow-link.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let backends: ClusterBackends;
let dist: Distribution;
let link: SlowLink;
let app: BuiltImage;
let big: BuiltImage;
let work: string;
let containerd: Containerd | undefined;
const replicas: ProxyProcess[] = [];

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the cluster test needs root: containerd mounts snapshots');
  work = makeTmpDir('ocimirror-cluster-');
  [backends, dist] = await Promise.all([startClusterBackends(), startDistribution()]);
  link = await startSlowLink(dist.url, 0);
  app = await buildLargeLayerImage({ format: 'oci', sizeBytes: 24 * MiB, seed: 1001, compression: 'none', dir: work, label: 'app' });
  big = await buildLargeLayerImage({ format: 'oci', sizeBytes: 200 * MiB, seed: 1002, compression: 'none', dir: work, label: 'big' });
  await pushImage(dist.url, 'library/app', '1.0', app);
  await pushImage(dist.url, 'library/big', '1.0', big);
  replicas.push(...(await Promise.all([0, 1, 2].map(() => replica()))));
}, 240_000);
afterAll(async () => {
  await containerd?.stop();
  await Promise.allSettled(replicas.map((r) => r.stop()));
  await Promise.allSettled([link?.close(), dist?.close(), backends?.close()]);
  if (work) await removeTmpDir(work);
}, 120_000);

function replica(): Promise<ProxyProcess> {
  return startReplicaProcess(backends, { 'docker.io': { endpoint: [link.url] } });
}

/** Upstream GETs of each blob of `image` since the last resetLog(), from Distribution's access log. */
async function blobGets(image: BuiltImage): Promise<Record<string, number>> {
  await dist.flushLog();
  return Object.fromEntries(image.blobs.map((b) => [b.digest, dist.count('GET', new RegExp(`/blobs/${b.digest}$`))]));
}

const once = (image: BuiltImage) => Object.fromEntries(image.blobs.map((b) => [b.digest, 1]));

describe('three replicas on one bucket', () => {
  it('30 concurrent cold pulls spread over the replicas make one upstream GET per blob; skopeo, ctr and CRI get the right digests', async () => {
    const dead = await deadPort();
    containerd = await startContainerd();
    writeHostsToml(containerd.hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: replicas[1]!.url }] });
    const cri = criClient(containerd.socket, { hostsDir: containerd.hostsDir });
    dist.resetLog();
    // Slow enough that the layer's fill (24 MiB) is still running while all 30 pulls ask for it.
    link.setRate(16 * MiB);
    try {
      const http = Array.from({ length: 27 }, (_, i) => pullThrough(replicas[i % 3]!.url, 'library/app', '1.0').then((p) => p.digest));
      const skopeo = skopeoCopyToOci(`docker://${new URL(replicas[2]!.url).host}/library/app:1.0`, join(work, 'skopeo'), '1.0', { preserveDigests: true })
        .then(() => (JSON.parse(readFileSync(join(work, 'skopeo', 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest);
      const ctr = containerd.ctrPull('docker.io/library/app:1.0').then((r) => r.digest);
      const viaCri = cri.pullImage('docker.io/library/app:1.0');
      const [digests, skopeoDigest, ctrDigest, criRef] = await Promise.all([Promise.all(http), skopeo, ctr, viaCri]);
      expect(new Set(digests)).toEqual(new Set([app.manifestDigest]));
      expect({ skopeoDigest, ctrDigest, criRef }).toEqual({ skopeoDigest: app.manifestDigest, ctrDigest: app.manifestDigest, criRef: app.config.digest });
      expect((await cri.imageStatus('docker.io/library/app:1.0'))?.repoDigests).toEqual([`docker.io/library/app@${app.manifestDigest}`]);
      expect(await containerd.imageDigest('docker.io/library/app:1.0', CRI_NAMESPACE)).toBe(app.manifestDigest);
    } finally {
      cri.close();
      link.setRate(0);
    }
    expect(await blobGets(app)).toEqual(once(app));
  }, 240_000);

  it('a 4th replica started afterwards serves the cached image with the upstream stopped', async () => {
    const fourth = await replica();
    replicas.push(fourth);
    await dist.stop();
    try {
      const pulled = await pullThrough(fourth.url, 'library/app', '1.0');
      expect({ digest: pulled.digest, blobs: pulled.blobs.sort() }).toEqual({ digest: app.manifestDigest, blobs: app.blobs.map((b) => b.digest).sort() });
      expect(fourth.logs().filter((l) => l.msg === 'request' && l.cache === 'hit').length).toBeGreaterThanOrEqual(app.blobs.length);
    } finally {
      await dist.start();
    }
  }, 120_000);

  it('kill -9 of the replica owning a 200 MiB fill: its follower\'s client fails, the retry succeeds, upstream GETs ≤ 2', async () => {
    const [owner, follower] = [replicas[0]!, replicas[1]!];
    const layer = big.layers[0]!;
    const url = (r: ProxyProcess) => `${r.url}/v2/library/big/blobs/${layer.digest}`;
    dist.resetLog();
    // 200 MiB at 20 MiB/s: the fill runs for ~10 s, and the test acts within its first seconds.
    link.setRate(20 * MiB);
    const first = new BlobClient(url(owner));
    await first.until(4 * MiB);
    // The owner holds the fill's lease now: the follower streams from it, not from upstream.
    const followed = new BlobClient(url(follower));
    await followed.until(4 * MiB);
    await owner.kill9();
    const cut = await followed.done;
    expect(cut.bytes, 'the follower\'s client must not get the whole blob').toBeLessThan(layer.size);
    expect(cut.error).toBeInstanceOf(Error);
    link.setRate(0);
    // What containerd does: retry the same mirror. The follower waits out the dead owner's lease and fills itself.
    const retry = await new BlobClient(url(follower)).done;
    expect({ status: retry.status, digest: retry.digest, bytes: retry.bytes, error: retry.error }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
    expect((await blobGets(big))[layer.digest]).toBeLessThanOrEqual(2);
    const followed1 = follower.logs().find((l) => l.msg === 'another replica is filling this blob; streaming it from there' && l.digest === layer.digest);
    expect(followed1, 'the follower streamed the first attempt from the owner').toMatchObject({ owner: owner.url });
  }, 180_000);
});
