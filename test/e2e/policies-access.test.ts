// deny and allowRepositories: a refused repository gets 403 DENIED naming what refused it, for manifests, blobs,
// tags/list and referrers, before any upstream contact (a fault upstream counts its TCP connections: 0); a blob
// by digest is reachable only through an allowed repository; allowed ones pull normally with skopeo and ctr from a
// real Distribution, and `warm` refuses the same images (with --config without asking the proxy at all).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmCommand } from '../../src/cli/warm.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { fetchFrom, ociErrors, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { skopeoCopyToOci } from '../helpers/skopeo.js';

const ACCESS = {
  policies: [{ match: { registry: '*', repository: 'internal/*' }, deny: true }],
  allowRepositories: ['docker.io/library/*', 'docker.io/internal/*'],
};
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('deny and allowRepositories', () => {
  if (process.getuid?.() !== 0) throw new Error('policies-access needs root: containerd mounts overlays');

  let work: string;
  let dist: Distribution;
  let fault: FaultUpstream;
  let proxy: TestProxy;
  let guarded: TestProxy;
  let containerd: Containerd | undefined;
  let allowed: BuiltImage;
  let secret: BuiltImage;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/policies-access-');
    dist = await startDistribution();
    fault = await startFaultUpstream();
    allowed = await buildImage({ format: 'oci', label: 'access allowed' });
    secret = await buildImage({ format: 'docker', label: 'access secret' });
    for (const repo of ['library/allowed', 'library/ctr-ok']) await pushImage(dist.url, repo, '1.0', allowed);
    for (const repo of ['internal/secret', 'team/app']) await pushImage(dist.url, repo, '1.0', secret);
    for (const repo of ['internal/secret', 'team/app']) fault.add(repo, '1.0', secret);
    proxy = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } }, ...ACCESS });
    guarded = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [fault.url] }, 'registry.test': { endpoint: [fault.url] } }, ...ACCESS });
    containerd = await startContainerd();
    writeHostsToml(containerd.hostsDir, 'docker.io', { server: `http://127.0.0.1:${await deadPort()}`, hosts: [{ url: proxy.url }] });
  }, 120_000);

  afterAll(async () => {
    const results = await Promise.allSettled([containerd?.stop(), proxy?.close(), guarded?.close(), fault?.close(), dist?.close()]);
    rmSync(work, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  it('403 DENIED for every resource and method, naming the rule, with no upstream connection at all', async () => {
    const paths = (name: string, q = '') => [
      `/v2/${name}/manifests/1.0${q}`, `/v2/${name}/manifests/${DIGEST}${q}`, `/v2/${name}/blobs/${DIGEST}${q}`,
      `/v2/${name}/tags/list${q}`, `/v2/${name}/referrers/${DIGEST}${q}`,
    ];
    const refused = [
      ...paths('internal/secret').map((path) => ({ path, reason: /^docker\.io\/internal\/secret is denied by policies\[0\] \(test-proxy\.yaml:\d+:\d+\)$/ })),
      ...paths('internal/secret', '?ns=docker.io').map((path) => ({ path, reason: /is denied by policies\[0\]/ })),
      ...paths('registry.test/internal/deep/er').map((path) => ({ path, reason: /^registry\.test\/internal\/deep\/er is denied by policies\[0\]/ })),
      ...paths('team/app').map((path) => ({ path, reason: /^docker\.io\/team\/app matches no allowRepositories entry$/ })),
    ];
    expect(refused).toHaveLength(20);
    for (const { path, reason } of refused) {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await fetchFrom(guarded.url, path, { method });
        expect(res.status, `${method} ${path}`).toBe(403);
        if (method === 'GET') {
          expect(ociErrors(res)[0]?.code, path).toBe('DENIED');
          expect(ociErrors(res)[0]?.message, path).toMatch(reason);
        }
      }
    }
    expect(fault.connections()).toBe(0);
    // The same proxy does reach the upstream for what is allowed (the count above could have seen it).
    expect((await fetchFrom(guarded.url, '/v2/library/nothing/manifests/1.0')).status).toBe(404);
    expect(fault.connections()).toBeGreaterThan(0);
  });

  it('a blob by digest only through an allowed repository: the denied one is refused, another gets it only if it has it', async () => {
    const layer = secret.layers[0]!.digest;
    dist.resetLog();
    expect((await fetchFrom(proxy.url, `/v2/internal/secret/blobs/${layer}`)).status).toBe(403);
    const via = await fetchFrom(proxy.url, `/v2/library/allowed/blobs/${layer}`);
    expect(via.status).toBe(404);
    expect(ociErrors(via)[0]?.code).toBe('BLOB_UNKNOWN');
    await dist.flushLog();
    expect(dist.accessLog().filter((l) => l.path.startsWith('/v2/internal/'))).toEqual([]);
    expect(dist.accessLog().filter((l) => l.path.startsWith('/v2/library/allowed/blobs/')).map((l) => l.status)).toEqual([404]);
  });

  it('allowed repositories pull normally with skopeo and ctr; a denied one fails in ctr too', async () => {
    const dir = join(work, 'skopeo');
    await skopeoCopyToOci(`docker://${proxy.host}/library/allowed:1.0`, dir, '1.0');
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([allowed.manifestDigest]);

    const res = await containerd!.ctrPull('docker.io/library/ctr-ok:1.0');
    expect(res.digest).toBe(allowed.manifestDigest);
    await expect(containerd!.ctrPull('docker.io/internal/secret:1.0')).rejects.toThrow(/internal\/secret/);
    expect(proxy.requests(/\/internal\/secret\/manifests\/1\.0\?ns=docker\.io$/).map((l) => l.status)).toContain(403);
  }, 180_000);

  it('warm refuses denied images: with --config before asking the proxy, without it from the proxy\'s 403', async () => {
    const configFile = join(work, 'ocimirror.yaml');
    writeFileSync(configFile, YAML.stringify({ server: { url: proxy.url }, mirrors: { 'docker.io': { endpoint: [dist.url] } }, ...ACCESS }));
    const out = { text: '', isTTY: false, write(s: string) { this.text += s; return true; } };
    const err = { text: '', isTTY: false, write(s: string) { this.text += s; return true; } };
    const before = proxy.requests(/\/v2\/(internal|team)\//).length;
    expect(await warmCommand(['--config', configFile, 'internal/secret:1.0', 'team/app:1.0', '--platform', 'linux/amd64'], { stdout: out, stderr: err })).toBe(1);
    expect(out.text + err.text).toMatch(/refused by the configuration: docker\.io\/internal\/secret is denied by policies\[0\]/);
    expect(out.text + err.text).toMatch(/refused by the configuration: docker\.io\/team\/app matches no allowRepositories entry/);
    expect(proxy.requests(/\/v2\/(internal|team)\//)).toHaveLength(before);

    const viaProxy = { text: '', isTTY: false, write(s: string) { this.text += s; return true; } };
    expect(await warmCommand(['--proxy', proxy.url, 'team/app:1.0', '--platform', 'linux/amd64'], { stdout: viaProxy, stderr: viaProxy })).toBe(1);
    expect(viaProxy.text).toMatch(/403|DENIED|allowRepositories/);
    expect(proxy.requests(/\/v2\/team\/app\//).map((l) => l.status)).toEqual([403]);
  });
});
