// `ocimirror import` into the cache of a running mirror whose upstream is stopped: archives made by skopeo
// (oci-archive:, docker-archive:), a gzip one and a zstd multi-image `podman save -m` archive (the shape of K3s's
// k3s-airgap-images-<arch>.tar.zst). The running server serves them without a restart, past cache.tagTtl, to
// skopeo, ctr and CRI, with the digests the archives hold.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeCacheConfig } from '../helpers/airgap.js';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, buildIndex, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { deadPort } from '../helpers/ports.js';
import { startTestProxy, testClock, type TestClock, type TestProxy } from '../helpers/proxy.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { skopeo, skopeoCopyToOci, skopeoManifestDigest } from '../helpers/skopeo.js';

if (process.getuid?.() !== 0) throw new Error('the import suite needs root: containerd and podman mount snapshots');

const DAY = 86_400_000;
let work: string;
let dist: Distribution;
let proxy: TestProxy;
let clock: TestClock;
let config: string;
let hello: BuiltImage;
let tool: BuiltImage;
let multi: BuiltIndex;
let pause: BuiltImage;
let coredns: BuiltImage;
let containerd: Containerd | undefined;
let podman: Podman | undefined;
const archives: Record<string, string> = {};

/** The manifest digest an oci: directory holds for its one image. */
function layoutDigest(dir: string): string | undefined {
  return (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]?.digest;
}

beforeAll(async () => {
  work = mkdtempSync('/tmp/airgap-import-');
  [hello, tool, multi, pause, coredns] = await Promise.all([
    buildImage({ format: 'oci', label: 'import hello' }),
    buildImage({ format: 'docker', label: 'import tool' }),
    buildIndex({ format: 'oci', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], label: 'import multi' }),
    buildImage({ format: 'docker', label: 'k3s pause' }),
    buildImage({ format: 'docker', label: 'k3s coredns' }),
  ]);
  dist = await startDistribution();
  await pushImage(dist.url, 'library/hello', '1.0', hello);
  await pushImage(dist.url, 'team/tool', '2.0', tool);
  await pushIndex(dist.url, 'library/multi', '1.0', multi);
  await pushImage(dist.url, 'rancher/mirrored-pause', '3.6', pause);
  await pushImage(dist.url, 'rancher/mirrored-coredns-coredns', '1.10.1', coredns);
  const src = (repo: string) => `docker://${dist.host}/${repo}`;
  archives.oci = join(work, 'hello-oci.tar');
  await skopeo(['--insecure-policy', 'copy', '--src-tls-verify=false', src('library/hello:1.0'), `oci-archive:${archives.oci}:docker.io/library/hello:1.0`]);
  archives.docker = join(work, 'tool-docker.tar');
  await skopeo(['--insecure-policy', 'copy', '--src-tls-verify=false', src('team/tool:2.0'), `docker-archive:${archives.docker}:docker.io/team/tool:2.0`]);
  archives.gzip = join(work, 'multi.tar.gz');
  await skopeo(['--insecure-policy', 'copy', '--all', '--src-tls-verify=false', src('library/multi:1.0'), `oci-archive:${join(work, 'multi.tar')}:docker.io/library/multi:1.0`]);
  execFileSync('gzip', ['-f', join(work, 'multi.tar')]);
  // podman save -m writes what `docker save` of several images writes: K3s's airgap archive, here zstd-compressed.
  podman = await makePodman();
  for (const repo of ['rancher/mirrored-pause:3.6', 'rancher/mirrored-coredns-coredns:1.10.1']) {
    await podman.pull(`${dist.host}/${repo}`);
    await podman.run(['tag', `${dist.host}/${repo}`, `docker.io/${repo}`]);
  }
  const k3s = join(work, 'k3s-airgap-images-amd64.tar');
  await podman.run(['save', '-m', '--format', 'docker-archive', '-o', k3s, 'docker.io/rancher/mirrored-pause:3.6', 'docker.io/rancher/mirrored-coredns-coredns:1.10.1']);
  execFileSync('zstd', ['-q', '-f', '--rm', k3s]);
  archives.zstd = `${k3s}.zst`;
  await dist.stop();
  clock = testClock();
  proxy = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } } }, { clock });
  config = writeCacheConfig(work, 'remote', proxy.cacheDir, { 'docker.io': [dist.url] });
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([containerd?.stop(), podman?.cleanup(), proxy?.close(), dist?.close()]);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('import into a running mirror with every upstream down', () => {
  const reported: Record<string, string> = {};

  it('imports all four archives and names what each became', async () => {
    const r = await runCli('import', ['-c', config, archives.oci!, archives.docker!, archives.gzip!, archives.zstd!]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`imported docker.io/library/hello:1.0 ${hello.manifestDigest}`);
    expect(r.out).toContain(`imported docker.io/library/multi:1.0 ${multi.manifestDigest}`);
    for (const name of ['docker.io/team/tool:2.0', 'docker.io/rancher/mirrored-pause:3.6', 'docker.io/rancher/mirrored-coredns-coredns:1.10.1']) {
      const m = new RegExp(`imported ${name.replace(/[.]/g, '\\.')} (sha256:[a-f0-9]{64})`).exec(r.out);
      expect(m, `${name} in\n${r.out}`).not.toBeNull();
      reported[name] = m![1]!;
    }
    // A docker archive holds no registry manifest: the one built from its content has a digest of its own.
    expect(reported['docker.io/team/tool:2.0']).not.toBe(tool.manifestDigest);
    expect(r.err).toBe('');
  });

  it('skopeo pulls the OCI, docker-archive and gzip imports a day later (past cache.tagTtl) with the archives\' digests', async () => {
    clock.advance(DAY);
    const pull = async (repo: string, all = false) => {
      const dir = join(work, `pulled-${repo.replace(/\W/g, '-')}`);
      await skopeoCopyToOci(`docker://${proxy.host}/${repo}`, dir, 'x', { all });
      return layoutDigest(dir);
    };
    expect(await pull('library/hello:1.0')).toBe(hello.manifestDigest);
    expect(await pull('library/multi:1.0', true)).toBe(multi.manifestDigest);
    // A copy into oci: converts a Docker manifest to OCI; inspect --raw shows the manifest as served.
    expect(await skopeoManifestDigest(`docker://${proxy.host}/team/tool:2.0`)).toBe(reported['docker.io/team/tool:2.0']);
    // Past tagTtl each tag was asked upstream first, and the imported mapping answered when no endpoint did.
    expect(proxy.proxy.service.stats.staleServed.error).toBeGreaterThan(0);
  });

  it('containerd pulls them with ctr and through CRI, the K3s images from the zstd archive too', async () => {
    containerd = await startContainerd();
    writeHostsToml(containerd.hostsDir, 'docker.io', { server: `http://127.0.0.1:${await deadPort()}`, hosts: [{ url: proxy.url }] });
    expect((await containerd.ctrPull('docker.io/library/multi:1.0')).digest).toBe(multi.manifestDigest);
    expect((await containerd.ctrPull('docker.io/library/hello:1.0')).digest).toBe(hello.manifestDigest);
    const cri = criClient(containerd.socket, { hostsDir: containerd.hostsDir });
    try {
      for (const [name, built] of [['docker.io/rancher/mirrored-pause:3.6', pause], ['docker.io/rancher/mirrored-coredns-coredns:1.10.1', coredns], ['docker.io/team/tool:2.0', tool]] as const) {
        // The image id CRI reports is the config digest: the very config the upstream image has.
        expect(await cri.pullImage(name)).toBe(built.config.digest);
        expect(await containerd.imageDigest(name, CRI_NAMESPACE)).toBe(reported[name]);
      }
    } finally {
      cri.close();
    }
  });

  it('cache list shows the imported tags as imported', async () => {
    const r = await runCli('cache', ['list', '-c', config, '--format', 'json']);
    const images = JSON.parse(r.out) as { repository: string; tag: string; state: string; digest: string; missingBlobs: number }[];
    expect(images.map((i) => `${i.repository}:${i.tag}`).sort()).toEqual(['library/hello:1.0', 'library/multi:1.0', 'rancher/mirrored-coredns-coredns:1.10.1', 'rancher/mirrored-pause:3.6', 'team/tool:2.0']);
    expect(images.every((i) => i.state === 'imported' && i.missingBlobs === 0)).toBe(true);
  });
});
