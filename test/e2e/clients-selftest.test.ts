// Proves the real-client harness against a plain CNCF Distribution before any proxy test relies on it:
// every client must pull the pushed image with the pushed manifest digest, with no route to a real registry.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { assertLoopbackOnly, writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage } from '../helpers/images.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { deadPort } from '../helpers/ports.js';
import { pushImage } from '../helpers/push.js';
import { skopeoCopyFromOci, skopeoCopyToOci, skopeoManifestDigest, writeRegistriesConf } from '../helpers/skopeo.js';

describe('real clients against a plain Distribution', () => {
  if (process.getuid?.() !== 0) throw new Error('clients self-test needs root: containerd and rootful podman mount overlays');

  let work: string;
  let registry: Distribution | undefined;
  let port: number;
  let dead: number;
  let pushed: string;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  const repo = (): string => `127.0.0.1:${port}/library/hello:1.0`;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/clients-selftest-');
    registry = await startDistribution();
    port = registry.port;
    dead = await deadPort();
    // Two layers, the second with a whiteout: unpacking it exercises the snapshotter for real.
    const image = await buildImage({ format: 'oci', label: 'clients-selftest' });
    pushed = image.manifestDigest;
    await pushImage(registry.url, 'library/hello', '1.0', image);
    containerd = await startContainerd();
  }, 60_000);

  afterAll(async () => {
    // Settle all: one failed stop must not leave the other processes running.
    const results = await Promise.allSettled([containerd?.stop(), podman?.cleanup(), registry?.close()]);
    rmSync(work, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  it('the registry serves the manifest digest we built', async () => {
    expect(await skopeoManifestDigest(`docker://${repo()}`)).toBe(pushed);
  });

  it('the harness refuses pulls that could leave the machine', async () => {
    const hostsDir = join(work, 'guard-hosts');
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).toThrow(/no hosts.toml for docker.io/);
    expect(() => assertLoopbackOnly(hostsDir, 'alpine')).toThrow(/docker.io/);
    writeHostsToml(hostsDir, 'docker.io', { server: 'https://registry-1.docker.io', hosts: [{ url: `http://127.0.0.1:${port}` }] });
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).toThrow(/registry-1\.docker\.io/);
    writeHostsToml(hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).not.toThrow();
    expect(() => assertLoopbackOnly(hostsDir, repo())).not.toThrow();
    await expect(containerd!.ctrPull('ghcr.io/x/y:1')).rejects.toThrow(/no hosts.toml for ghcr.io/);
  });

  it('ctr pulls through a hosts.toml whose server is dead', async () => {
    const c = containerd!;
    writeHostsToml(c.hostsDir, `127.0.0.1:${port}`, { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    const res = await c.ctrPull(repo());
    expect(res.digest).toBe(pushed);
    expect(await c.imageDigest(repo())).toBe(pushed);
    // The unpacked rootfs proves the layers were applied in order, whiteout included.
    const rootfs = join(work, 'rootfs');
    mkdirSync(rootfs);
    await c.ctr(['images', 'mount', '--rw=false', repo(), rootfs]);
    try {
      expect(readFileSync(join(rootfs, 'hello.txt'), 'utf8')).toContain('hello from ocimirror');
      expect(existsSync(join(rootfs, 'etc', 'greeting'))).toBe(true);
      expect(existsSync(join(rootfs, 'etc', 'motd'))).toBe(false);
    } finally {
      await c.ctr(['images', 'unmount', '--rm', rootfs]);
    }
    await c.removeImage(repo());
    expect(await c.imageDigest(repo())).toBeUndefined();
  }, 60_000);

  it('ctr pulls docker.io/... from the mirror host and sends ns=docker.io', async () => {
    const c = containerd!;
    writeHostsToml(c.hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    const res = await c.ctrPull('docker.io/library/hello:1.0', { namespace: 'mirror' });
    expect(res.digest).toBe(pushed);
    await registry!.flushLog();
    expect(registry!.count('HEAD', /^\/v2\/library\/hello\/manifests\/1\.0\?ns=docker\.io$/)).toBe(1);
  }, 60_000);

  it('ctr fails (not hangs) when neither host has the image', async () => {
    await expect(containerd!.ctrPull(`127.0.0.1:${port}/library/absent:1.0`)).rejects.toThrow(/not found|connection refused/);
  }, 60_000);

  it('CRI PullImage pulls and unpacks through the hosts dir', async () => {
    const c = containerd!;
    const cri = criClient(c.socket, { hostsDir: c.hostsDir });
    try {
      const imageRef = await cri.pullImage(repo());
      expect(imageRef).toMatch(/^sha256:[0-9a-f]{64}$/);
      const status = await cri.imageStatus(repo());
      expect(status?.id).toBe(imageRef);
      expect(status?.repoDigests).toContain(`127.0.0.1:${port}/library/hello@${pushed}`);
      expect(status?.repoTags).toContain(repo());
      expect(Number(status?.size)).toBeGreaterThan(0);
      expect(await c.imageDigest(repo(), CRI_NAMESPACE)).toBe(pushed);
      await cri.removeImage(repo());
      expect(await cri.imageStatus(repo())).toBeUndefined();
    } finally {
      cri.close();
    }
  }, 60_000);

  it('skopeo copies to an OCI layout and back with the same manifest digest', async () => {
    const dir = join(work, 'copy');
    await skopeoCopyToOci(`docker://${repo()}`, dir, '1.0');
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([pushed]);
    await skopeoCopyFromOci(dir, '1.0', `docker://127.0.0.1:${port}/library/copied:1.0`);
    expect(await skopeoManifestDigest(`docker://127.0.0.1:${port}/library/copied:1.0`)).toBe(pushed);
  }, 60_000);

  it('skopeo and podman resolve docker.io through a registries.conf mirror', async () => {
    const conf = join(work, 'registries.conf');
    writeRegistriesConf(conf, [
      { prefix: 'docker.io', location: `127.0.0.1:${dead}`, mirrors: [{ location: `127.0.0.1:${port}`, insecure: true }] },
    ]);
    expect(await skopeoManifestDigest('docker://docker.io/library/hello:1.0', { registriesConf: conf })).toBe(pushed);
    await expect(skopeoManifestDigest('docker://quay.io/x/y:1', { registriesConf: conf })).rejects.toThrow(/no \[\[registry\]\] for quay.io/);
    podman = await makePodman();
    await podman.pull('docker.io/library/hello:1.0', { registriesConf: conf });
    expect(await podman.imageDigest('docker.io/library/hello:1.0')).toBe(pushed);
    expect(await podman.imageDigest('docker.io/library/absent:1.0')).toBeUndefined();
  }, 90_000);
});
