// Real clients through ocimirror: skopeo (default routing and a registries.conf path prefix), podman, containerd's
// ctr and the CRI image service with hosts.toml mirrors whose `server` is a dead loopback port. Digests must equal
// the upstream's, and the proxy log must show how each request was routed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, buildIndex, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { deadPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { skopeoCopyToOci, skopeoManifestDigest, writeRegistriesConf } from '../helpers/skopeo.js';

const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];

describe('real clients through ocimirror', () => {
  if (process.getuid?.() !== 0) throw new Error('core-clients needs root: containerd and rootful podman mount overlays');

  let work: string;
  let dist: Distribution;
  let proxy: TestProxy;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  let dead: number;
  // Every test pulls images nobody pulled before, so each pull goes upstream through the routing under test.
  const single = new Map<string, BuiltImage>();
  const multi = new Map<string, BuiltIndex>();
  const nsEncoded = () => `ns=127\\.0\\.0\\.1%3A${dist.port}`;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/core-clients-');
    dist = await startDistribution();
    dead = await deadPort();
    // skopeo writes OCI layouts: a Docker manifest would be converted (new digest), so its images are OCI.
    const formats = { 'sk-default': 'oci', 'sk-docker': 'docker', 'sk-prefix': 'oci', 'ctr-single': 'docker', 'ctr-local': 'oci', 'cri-single': 'docker', 'pm-single': 'oci' } as const;
    for (const [name, format] of Object.entries(formats)) {
      const img = await buildImage({ format, label: `clients ${name}` });
      single.set(name, img);
      await pushImage(dist.url, `library/${name}`, '1.0', img);
    }
    for (const [i, name] of ['sk-multi', 'ctr-multi', 'ctr-local-multi', 'cri-multi', 'pm-multi'].entries()) {
      const idx = await buildIndex({ format: i % 2 ? 'docker' : 'oci', platforms, label: `clients ${name}` });
      multi.set(name, idx);
      await pushIndex(dist.url, `library/${name}`, '1.0', idx);
    }
    proxy = await startTestProxy({
      cache: { tagTtl: '0s' },
      mirrors: { 'docker.io': { endpoint: [dist.url] }, [dist.host]: { endpoint: [dist.url] }, 'registry.test': { endpoint: [dist.url] } },
    });
    containerd = await startContainerd();
    for (const registry of ['docker.io', dist.host]) {
      writeHostsToml(containerd.hostsDir, registry, { server: `http://127.0.0.1:${dead}`, hosts: [{ url: proxy.url }] });
    }
  }, 120_000);

  afterAll(async () => {
    const results = await Promise.allSettled([containerd?.stop(), podman?.cleanup(), proxy?.close(), dist?.close()]);
    rmSync(work, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  const ociIndexDigests = (dir: string): string[] =>
    (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);

  describe('skopeo', () => {
    it('copies a single-arch image with default routing (no ns, no prefix)', async () => {
      const dir = join(work, 'sk-default');
      await skopeoCopyToOci(`docker://${proxy.host}/library/sk-default:1.0`, dir, '1.0');
      expect(ociIndexDigests(dir)).toEqual([single.get('sk-default')!.manifestDigest]);
      const lines = proxy.requests(/^\/v2\/library\/sk-default\//);
      expect(lines.length).toBeGreaterThan(0);
      expect(new Set(lines.map((l) => l.registry))).toEqual(new Set(['docker.io']));
    }, 60_000);

    it('copies every platform of an index (--all)', async () => {
      const dir = join(work, 'sk-multi');
      await skopeoCopyToOci(`docker://${proxy.host}/library/sk-multi:1.0`, dir, '1.0', { all: true });
      expect(ociIndexDigests(dir)).toEqual([multi.get('sk-multi')!.manifestDigest]);
      for (const { image } of multi.get('sk-multi')!.images) {
        expect(proxy.requests(new RegExp(`/library/sk-multi/manifests/${image.manifestDigest}`)).length).toBeGreaterThan(0);
      }
    }, 60_000);

    it('reads a Docker schema 2 manifest with the upstream digest (default routing)', async () => {
      expect(await skopeoManifestDigest(`docker://${proxy.host}/library/sk-docker:1.0`)).toBe(single.get('sk-docker')!.manifestDigest);
    }, 60_000);

    // containers/image rejects a mirror location "127.0.0.1:<proxy>/127.0.0.1:<dist>" (a ':' is not allowed in a
    // repository path component: "rewriting reference: invalid reference format"), so the prefix is a dotted name.
    it('follows a registries.conf mirror 127.0.0.1:<proxy>/registry.test (path-prefix routing)', async () => {
      const conf = join(work, 'registries-prefix.conf');
      writeRegistriesConf(conf, [{ prefix: 'registry.test', location: `127.0.0.1:${dead}`, mirrors: [{ location: `${proxy.host}/registry.test`, insecure: true }] }]);
      const dir = join(work, 'sk-prefix');
      await skopeoCopyToOci('docker://registry.test/library/sk-prefix:1.0', dir, '1.0', { registriesConf: conf });
      expect(ociIndexDigests(dir)).toEqual([single.get('sk-prefix')!.manifestDigest]);
      const lines = proxy.requests(/^\/v2\/registry\.test\/library\/sk-prefix\//);
      expect(lines.length).toBeGreaterThan(0);
      expect(new Set(lines.map((l) => l.registry))).toEqual(new Set(['registry.test']));
    }, 60_000);
  });

  describe('podman', () => {
    it('pulls single- and multi-arch docker.io images through a registries.conf mirror 127.0.0.1:<proxy>/docker.io', async () => {
      const conf = join(work, 'registries-hub.conf');
      writeRegistriesConf(conf, [{ prefix: 'docker.io', location: `127.0.0.1:${dead}`, mirrors: [{ location: `${proxy.host}/docker.io`, insecure: true }] }]);
      expect(await skopeoManifestDigest('docker://docker.io/library/pm-single:1.0', { registriesConf: conf })).toBe(single.get('pm-single')!.manifestDigest);
      podman = await makePodman();
      await podman.pull('docker.io/library/pm-single:1.0', { registriesConf: conf });
      expect(await podman.imageDigest('docker.io/library/pm-single:1.0')).toBe(single.get('pm-single')!.manifestDigest);
      await podman.pull('docker.io/library/pm-multi:1.0', { registriesConf: conf });
      expect(await podman.imageDigest('docker.io/library/pm-multi:1.0')).toBe(multi.get('pm-multi')!.manifestDigest);
      const lines = proxy.requests(/^\/v2\/docker\.io\/library\/pm-(single|multi)\//);
      expect(lines.length).toBeGreaterThan(0);
      expect(new Set(lines.map((l) => l.registry))).toEqual(new Set(['docker.io']));
    }, 120_000);
  });

  describe('containerd (hosts.toml → proxy, server on a dead port)', () => {
    it('ctr pulls a docker.io single-arch image; every request carries ns=docker.io', async () => {
      const ref = 'docker.io/library/ctr-single:1.0';
      const res = await containerd!.ctrPull(ref);
      expect(res.digest).toBe(single.get('ctr-single')!.manifestDigest);
      const lines = proxy.requests(/\/library\/ctr-single\//);
      expect(lines.length).toBeGreaterThanOrEqual(4);
      for (const l of lines) expect(String(l.url)).toMatch(/\?ns=docker\.io$/);
      expect(new Set(lines.map((l) => l.registry))).toEqual(new Set(['docker.io']));
    }, 120_000);

    it('ctr pulls a docker.io multi-arch index with --all-platforms', async () => {
      const idx = multi.get('ctr-multi')!;
      const res = await containerd!.ctrPull('docker.io/library/ctr-multi:1.0', { allPlatforms: true });
      expect(res.digest).toBe(idx.manifestDigest);
      for (const { image } of idx.images) {
        for (const blob of image.blobs) expect(proxy.requests(new RegExp(`/library/ctr-multi/blobs/${blob.digest}\\?ns=docker\\.io$`)).length, blob.digest).toBeGreaterThan(0);
      }
    }, 120_000);

    it('ctr pulls from 127.0.0.1:<dist> through the proxy with ns=127.0.0.1%3A<port>', async () => {
      const ref = `${dist.host}/library/ctr-local:1.0`;
      expect((await containerd!.ctrPull(ref)).digest).toBe(single.get('ctr-local')!.manifestDigest);
      const idx = multi.get('ctr-local-multi')!;
      expect((await containerd!.ctrPull(`${dist.host}/library/ctr-local-multi:1.0`, { platform: 'linux/arm64/v8' })).digest).toBe(idx.manifestDigest);
      const lines = proxy.requests(/\/library\/ctr-local(-multi)?\//);
      expect(lines.length).toBeGreaterThanOrEqual(8);
      for (const l of lines) expect(String(l.url)).toMatch(new RegExp(`\\?${nsEncoded()}$`));
      expect(new Set(lines.map((l) => l.registry))).toEqual(new Set([dist.host]));
      // The arm64 child was fetched, the amd64 one's layers were not.
      const [amd64, arm64] = idx.images.map((i) => i.image);
      expect(proxy.requests(new RegExp(`/blobs/${arm64!.layers[0]!.digest}`)).length).toBeGreaterThan(0);
      expect(proxy.requests(new RegExp(`/blobs/${amd64!.layers[0]!.digest}`))).toEqual([]);
    }, 120_000);

    it('the CRI image service pulls a docker.io image and a 127.0.0.1:<dist> index through the proxy', async () => {
      const cri = criClient(containerd!.socket, { hostsDir: containerd!.hostsDir });
      try {
        const hubRef = 'docker.io/library/cri-single:1.0';
        const imageRef = await cri.pullImage(hubRef);
        expect(imageRef).toBe(single.get('cri-single')!.config.digest);
        expect((await cri.imageStatus(hubRef))?.repoDigests).toContain(`docker.io/library/cri-single@${single.get('cri-single')!.manifestDigest}`);
        expect(await containerd!.imageDigest(hubRef, CRI_NAMESPACE)).toBe(single.get('cri-single')!.manifestDigest);
        for (const l of proxy.requests(/\/library\/cri-single\//)) expect(String(l.url)).toMatch(/\?ns=docker\.io$/);

        const idx = multi.get('cri-multi')!;
        const localRef = `${dist.host}/library/cri-multi:1.0`;
        await cri.pullImage(localRef);
        expect((await cri.imageStatus(localRef))?.repoDigests).toContain(`${dist.host}/library/cri-multi@${idx.manifestDigest}`);
        expect(await containerd!.imageDigest(localRef, CRI_NAMESPACE)).toBe(idx.manifestDigest);
        const lines = proxy.requests(/\/library\/cri-multi\//);
        expect(lines.length).toBeGreaterThanOrEqual(4);
        for (const l of lines) expect(String(l.url)).toMatch(new RegExp(`\\?${nsEncoded()}$`));
      } finally {
        cri.close();
      }
    }, 120_000);
  });
});
