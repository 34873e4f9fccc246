// `ocimirror warm` against a real Distribution behind the proxy: warm a multi-arch index and a single image, stop
// the upstream, then real skopeo and containerd (ctr and CRI) pull both from the cache alone.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmCommand } from '../../src/cli/warm.js';
import { UsageError } from '../../src/cli/usage.js';
import { parseImageRef } from '../../src/warm/reference.js';
import { platformMatches } from '../../src/warm/walk.js';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, buildIndex, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { skopeoCopyToOci } from '../helpers/skopeo.js';

class Capture {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(s: string): boolean { this.text += s; return true; }
}

async function warm(argv: string[], tty = false): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture(false);
  const stderr = new Capture(tty);
  const code = await warmCommand(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

describe('image references', () => {
  it('normalise like containerd: Docker Hub defaults, ports, digests', () => {
    expect(parseImageRef('alpine')).toMatchObject({ registry: 'docker.io', repo: 'library/alpine', reference: 'latest', display: 'docker.io/library/alpine:latest' });
    expect(parseImageRef('docker.io/library/alpine:3.19')).toMatchObject({ registry: 'docker.io', repo: 'library/alpine', reference: '3.19' });
    expect(parseImageRef('bitnami/redis:7')).toMatchObject({ registry: 'docker.io', repo: 'bitnami/redis', reference: '7' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`127.0.0.1:5000/x/y@${d}`)).toMatchObject({ registry: '127.0.0.1:5000', repo: 'x/y', reference: d });
    expect(parseImageRef(`ghcr.io/o/app:1@${d}`)).toMatchObject({ registry: 'ghcr.io', repo: 'o/app', reference: d });
    expect(parseImageRef('localhost/app')).toMatchObject({ registry: 'localhost', repo: 'app', reference: 'latest' });
    expect(() => parseImageRef('Alpine')).toThrow(/invalid repository/);
    expect(() => parseImageRef('alpine@sha256:xyz')).toThrow(/digest/);
  });

  it('match platforms with and without variants', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, undefined)).toBe(false);
  });

  it('a bad reference or flag is a usage error before anything is fetched', async () => {
    await expect(warm(['alpine', 'Bad/Name', '--proxy', 'http://127.0.0.1:1'])).rejects.toBeInstanceOf(UsageError);
    await expect(warm(['alpine', '--platform', 'linux', '--proxy', 'http://127.0.0.1:1'])).rejects.toThrow(/platform/);
    await expect(warm(['alpine', '--platform', 'linux/amd64', '--all-platforms'])).rejects.toThrow(/alternatives/);
    await expect(warm([])).rejects.toThrow(/at least one IMAGE/);
  });
});

describe('warm, stop the upstream, pull from the cache', () => {
  if (process.getuid?.() !== 0) throw new Error('this suite needs root: containerd mounts snapshots');
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];
  let dist: Distribution;
  let proxy: TestProxy;
  let containerd: Containerd | undefined;
  let index: BuiltIndex;
  let tool: BuiltImage;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/ops-warm-');
    [index, tool] = await Promise.all([buildIndex({ format: 'oci', platforms, label: 'warm index' }), buildImage({ format: 'docker', label: 'warm tool' })]);
    dist = await startDistribution();
    await pushIndex(dist.url, 'library/app', '1.0', index);
    await pushImage(dist.url, 'team/tool', '2.0', tool);
    // tagTtl 0: every tag lookup after the warm must go upstream first, so the pulls below prove the offline path.
    proxy = await startTestProxy({ cache: { tagTtl: '0s' }, mirrors: { 'docker.io': { endpoint: [dist.url] }, [dist.host]: { endpoint: [dist.url] } } });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([containerd?.stop(), proxy?.close(), dist?.close()]);
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('warms both platforms of the index and the single image from a list file, with plain progress lines', async () => {
    const list = join(work, 'images.txt');
    writeFileSync(list, `# images for the cluster\napp:1.0\n\n${dist.host}/team/tool:2.0   # tools\n`);
    const { code, out, err } = await warm(['--file', list, '--platform', 'linux/amd64,linux/arm64', '--proxy', proxy.url]);
    expect(code, err).toBe(0);
    expect(err).toContain('docker.io/library/app:1.0: 3 manifest(s) for linux/amd64, linux/arm64/v8');
    expect(err).toMatch(new RegExp(`${dist.host}/team/tool:2.0: blob sha256:\\S+ .* \\(3/3\\)`));
    expect(err).not.toContain('\r');
    expect(out).toContain('warmed 2 of 2 image(s)');
    expect(out).toMatch(new RegExp(`ok +docker\\.io/library/app:1\\.0 +${index.manifestDigest}`));
    expect(out).toMatch(new RegExp(`ok +${dist.host}/team/tool:2\\.0 +${tool.manifestDigest}`));
    // Every blob of both platforms went through the proxy: the upstream served each exactly once.
    await dist.flushLog();
    const blobs = new Set([...index.images.flatMap((i) => i.image.blobs), ...tool.blobs].map((b) => b.digest));
    for (const d of blobs) expect(dist.count('GET', new RegExp(`/blobs/${d}$`)), d).toBe(1);
  });

  it('redraws one line per image on a terminal, reports failures and exits 1', async () => {
    const { code, out, err } = await warm(['library/app:1.0', 'library/absent:1', '--all-platforms', '--proxy', proxy.url], true);
    expect(code).toBe(1);
    expect(err).toContain('\r\x1b[K');
    expect(err).toMatch(/✓ docker\.io\/library\/app:1\.0 +6 blobs/);
    expect(err).toMatch(/✗ docker\.io\/library\/absent:1 +FAILED: GET manifests\/1: HTTP 404 MANIFEST_UNKNOWN: manifest unknown/);
    expect(out).toContain('warmed 1 of 2 image(s)');
    expect(out).toMatch(/FAILED +docker\.io\/library\/absent:1/);
    expect(out).toContain('1 image(s) failed');
  });

  it('after the upstream stops, skopeo copies every platform from the cache', async () => {
    await dist.stop();
    const dir = join(work, 'skopeo-oci');
    await skopeoCopyToOci(`docker://${proxy.host}/library/app:1.0`, dir, '1.0', { all: true });
    const layout = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(layout.manifests[0]?.digest).toBe(index.manifestDigest);
    expect(proxy.warnings(/serving the last known manifest/).length).toBeGreaterThan(0);
  });

  it('after the upstream stops, containerd pulls both images with ctr and through CRI', async () => {
    containerd = await startContainerd();
    const dead = await deadPort();
    for (const registry of ['docker.io', dist.host]) {
      writeHostsToml(containerd.hostsDir, registry, { server: `http://127.0.0.1:${dead}`, hosts: [{ url: proxy.url }] });
    }
    const app = await containerd.ctrPull('docker.io/library/app:1.0');
    expect(app.digest).toBe(index.manifestDigest);
    const cri = criClient(containerd.socket, { hostsDir: containerd.hostsDir });
    try {
      await cri.pullImage(`${dist.host}/team/tool:2.0`);
      const status = await cri.imageStatus(`${dist.host}/team/tool:2.0`);
      expect(status?.repoDigests).toContain(`${dist.host}/team/tool@${tool.manifestDigest}`);
    } finally {
      cri.close();
    }
    expect(await containerd.imageDigest(`${dist.host}/team/tool:2.0`, CRI_NAMESPACE)).toBe(tool.manifestDigest);
  });
});
