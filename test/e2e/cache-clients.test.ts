// Real clients while the upstream is down: after an image was pulled once through ocimirror, skopeo and containerd
// (ctr through a hosts.toml whose `server` is a dead loopback port) pull it again from the cache alone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { skopeoCopyToOci } from '../helpers/skopeo.js';

const TTL_MS = 1000;
let work: string;
let dist: Distribution;
let image: BuiltImage;
let dead: number;
const containerds: Containerd[] = [];
let tp: TestProxy | undefined;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the cache clients test needs root: containerd mounts snapshots');
  work = mkdtempSync('/tmp/cache-clients-');
  dist = await startDistribution();
  dead = await deadPort();
  image = await buildImage({ format: 'oci', label: 'cache-clients' });
  await pushImage(dist.url, 'library/hello', '1.0', image);
}, 60_000);
afterEach(async () => {
  const results = await Promise.allSettled([...containerds.splice(0).map((c) => c.stop()), tp?.close(), dist.start()]);
  tp = undefined;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}, 60_000);
afterAll(async () => {
  await dist?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function proxy(): Promise<TestProxy> {
  tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } }, cache: { tagTtl: `${TTL_MS}ms` } });
  return tp;
}

/** A fresh containerd (its own content store: nothing pulled before) whose docker.io host is the proxy only. */
async function containerd(p: TestProxy): Promise<Containerd> {
  const c = await startContainerd();
  containerds.push(c);
  writeHostsToml(c.hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: p.url }] });
  return c;
}

async function skopeoDigest(p: TestProxy, name: string): Promise<string> {
  const dir = join(work, name);
  await skopeoCopyToOci(`docker://${p.host}/library/hello:1.0`, dir, '1.0');
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

async function stopUpstream(): Promise<void> {
  await dist.stop();
  await expect(request(`${dist.url}/v2/`)).rejects.toThrow();
  await new Promise((r) => setTimeout(r, TTL_MS + 200));
}

describe('real clients pull from the cache while the upstream is stopped', () => {
  it('skopeo and containerd, each having pulled through the proxy once', async () => {
    const p = await proxy();
    expect(await skopeoDigest(p, 'warm-skopeo')).toBe(image.manifestDigest);
    const warm = await containerd(p);
    expect((await warm.ctrPull('docker.io/library/hello:1.0')).digest).toBe(image.manifestDigest);

    await stopUpstream();
    expect(await skopeoDigest(p, 'offline-skopeo')).toBe(image.manifestDigest);
    const offline = await containerd(p);
    expect((await offline.ctrPull('docker.io/library/hello:1.0')).digest).toBe(image.manifestDigest);
    expect(p.requests(/\/manifests\/1\.0/).some((l) => l.status === 200)).toBe(true);
    expect(p.warnings(/serving the last known manifest/).length).toBeGreaterThan(0);
  }, 180_000);

  it('skopeo pulls offline an image that only containerd pulled through the proxy before', async () => {
    const p = await proxy();
    const warm = await containerd(p);
    expect((await warm.ctrPull('docker.io/library/hello:1.0')).digest).toBe(image.manifestDigest);
    await stopUpstream();
    expect(await skopeoDigest(p, 'offline-after-containerd')).toBe(image.manifestDigest);
  }, 180_000);

  it('containerd pulls offline an image that only skopeo pulled through the proxy before', async () => {
    const p = await proxy();
    expect(await skopeoDigest(p, 'warm-skopeo-only')).toBe(image.manifestDigest);
    await stopUpstream();
    const offline = await containerd(p);
    expect((await offline.ctrPull('docker.io/library/hello:1.0')).digest).toBe(image.manifestDigest);
  }, 180_000);
});
