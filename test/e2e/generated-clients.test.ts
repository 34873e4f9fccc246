// Real clients use the files `ocimirror generate` writes: containerd (ctr and CRI) with the generated hosts.toml,
// skopeo and podman with the generated registries.conf, each pulling through a real ocimirror from a real
// Distribution. Every upstream is on loopback; the helpers refuse any pull that could leave this machine.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateHostsToml, type HostsTomlOptions } from '../../src/generator/hosts-toml.js';
import { generateRegistriesConf } from '../../src/generator/registries-conf.js';
import type { GeneratorInput } from '../../src/generator/target.js';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { installHostsTomlFiles } from '../helpers/hosts-toml.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage } from '../helpers/images.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { deadPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { assertNoOutsideRegistry, skopeo } from '../helpers/skopeo.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

describe('clients pull through ocimirror with the generated files', () => {
  if (process.getuid?.() !== 0) throw new Error('generated-clients e2e needs root: containerd and rootful podman mount overlays');

  let work: string;
  let registry: Distribution | undefined;
  let proxy: TestProxy | undefined;
  let tlsProxy: TestProxy | undefined;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  let pushed: string;
  let dead: number;
  let ca: string;

  /** The running proxy's mirrors, as nodes reach them at `url`. */
  const input = (url: string): GeneratorInput => ({ ...proxy!.config, source: 'e2e', server: { url } });

  /** Writes the generated hosts.toml files (only `registries`, when given) into containerd's config_path. */
  function installHostsToml(url: string, opts: HostsTomlOptions & { registries?: string[] } = {}): void {
    installHostsTomlFiles(containerd!.hostsDir, generateHostsToml(input(url), opts), opts.registries);
  }

  beforeAll(async () => {
    work = makeTmpDir('ocimirror-generated-');
    registry = await startDistribution();
    const image = await buildImage({ format: 'oci', label: 'generated-clients' });
    pushed = image.manifestDigest;
    await pushImage(registry.url, 'library/hello', '1.0', image);
    // A fresh object each time: the helper serialises the config, and a shared one would become a YAML alias.
    const mirror = () => ({ endpoint: [registry!.url] });
    // docker.io and quay.io route by ?ns= (containerd) and path prefix (podman); "localhost" is a prefix podman can
    // fall back from; the registry's own host:port gives containerd a loopback `server` to fall back to.
    proxy = await startTestProxy({ mirrors: { 'docker.io': mirror(), 'quay.io': mirror(), localhost: mirror(), [registry.host]: mirror() } });
    dead = await deadPort();
    ca = makeCertificates(work);
    tlsProxy = await startTestProxy({
      server: { tls: { cert_file: join(work, 'server.pem'), key_file: join(work, 'server-key.pem') } },
      mirrors: { 'docker.io': mirror() },
    });
    containerd = await startContainerd();
  }, 120_000);

  afterAll(async () => {
    // Settle all: one failed stop must not leave the other processes running.
    const results = await Promise.allSettled([containerd?.stop(), podman?.cleanup(), proxy?.close(), tlsProxy?.close(), registry?.close()]);
    await removeTmpDir(work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  afterEach(async () => {
    for (const ref of ['docker.io/library/hello:1.0', `${registry!.host}/library/hello:1.0`]) await containerd!.removeImage(ref);
  });

  it('ctr pulls docker.io through the proxy with a --no-fallback hosts.toml; the proxy sees ns=docker.io', async () => {
    installHostsToml(proxy!.url, { noFallback: true });
    const res = await containerd!.ctrPull('docker.io/library/hello:1.0');
    expect(res.digest).toBe(pushed);
    expect(proxy!.requests(/^\/v2\/library\/hello\/manifests\/1\.0\?ns=docker\.io$/).length).toBeGreaterThan(0);
  });

  it('the CRI plugin (what kubelet and K3s use) pulls quay.io through the generated hosts.toml', async () => {
    installHostsToml(proxy!.url, { noFallback: true });
    const cri = criClient(containerd!.socket, { hostsDir: containerd!.hostsDir });
    try {
      await cri.pullImage('quay.io/library/hello:1.0');
      expect((await cri.imageStatus('quay.io/library/hello:1.0'))?.repoDigests).toContain(`quay.io/library/hello@${pushed}`);
      expect(await containerd!.imageDigest('quay.io/library/hello:1.0', CRI_NAMESPACE)).toBe(pushed);
      await cri.removeImage('quay.io/library/hello:1.0');
    } finally {
      cri.close();
    }
    expect(proxy!.requests(/\?ns=quay\.io$/).length).toBeGreaterThan(0);
  });

  it('with fallback, containerd goes through the proxy, and to the registry\'s own endpoint (`server`) when the proxy is down', async () => {
    const ref = `${registry!.host}/library/hello:1.0`;
    const ns = new RegExp(`\\?ns=${encodeURIComponent(registry!.host)}$`);
    installHostsToml(`http://127.0.0.1:${dead}`, { registries: [registry!.host] });
    registry!.resetLog();
    expect((await containerd!.ctrPull(ref)).digest).toBe(pushed);
    await registry!.flushLog();
    // Straight from the registry: containerd sends no ns to the registry's own endpoint.
    expect(registry!.count('HEAD', /^\/v2\/library\/hello\/manifests\/1\.0$/)).toBe(1);
    expect(proxy!.requests(ns)).toEqual([]);
    await containerd!.removeImage(ref);
    installHostsToml(proxy!.url, { registries: [registry!.host] });
    expect((await containerd!.ctrPull(ref)).digest).toBe(pushed);
    expect(proxy!.requests(ns).length).toBeGreaterThan(0);
  });

  it('an https proxy is trusted through the generated ca (--ca-file) and is the only path with --no-fallback', async () => {
    installHostsToml(tlsProxy!.url, { noFallback: true, caFile: ca, registries: ['docker.io'] });
    expect(tlsProxy!.url).toMatch(/^https:/);
    expect((await containerd!.ctrPull('docker.io/library/hello:1.0')).digest).toBe(pushed);
    expect(tlsProxy!.requests(/^\/v2\/library\/hello\/manifests\/.*\?ns=docker\.io$/).length).toBeGreaterThan(0);
  });

  it('skopeo reads the generated registries.conf: insecure = true is what lets it reach the http proxy', async () => {
    const conf = join(work, 'no-fallback.conf');
    writeFileSync(conf, generateRegistriesConf(input(proxy!.url), { noFallback: true }));
    const ref = 'docker://docker.io/library/hello:1.0';
    assertNoOutsideRegistry(ref, conf);
    // No --tls-verify flag: only the file's insecure = true allows plain http to the proxy.
    const { stdout } = await skopeo(['--registries-conf', conf, 'inspect', '--raw', '--no-tags', ref]);
    expect(sha256(stdout)).toBe(pushed);
    expect(proxy!.requests(/^\/v2\/docker\.io\/library\/hello\/manifests\/1\.0$/).length).toBeGreaterThan(0);
  });

  it('skopeo uses the generated [[registry.mirror]] (proxy host/registry) before the registry itself', async () => {
    const conf = join(work, 'fallback.conf');
    writeFileSync(conf, generateRegistriesConf(input(proxy!.url)));
    const ref = 'docker://localhost/library/hello:1.0';
    // localhost:443 refuses: only the mirror can answer.
    assertNoOutsideRegistry(ref, conf);
    const { stdout } = await skopeo(['--registries-conf', conf, 'inspect', '--raw', '--no-tags', ref]);
    expect(sha256(stdout)).toBe(pushed);
    expect(proxy!.requests(/^\/v2\/localhost\/library\/hello\/manifests\/1\.0$/).length).toBeGreaterThan(0);
  });

  it('podman pulls docker.io through the proxy with the generated registries.conf', async () => {
    const conf = join(work, 'podman.conf');
    writeFileSync(conf, generateRegistriesConf(input(proxy!.url), { noFallback: true }));
    podman = await makePodman();
    await podman.pull('docker.io/library/hello:1.0', { registriesConf: conf });
    expect(await podman.imageDigest('docker.io/library/hello:1.0')).toBe(pushed);
  });
});

// Manifests are UTF-8 JSON, so the decoded stdout re-encodes to the exact bytes skopeo received.
function sha256(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/** A private CA and a server certificate for 127.0.0.1 signed by it; returns the CA file's path. */
function makeCertificates(dir: string): string {
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=ocimirror e2e CA',
    '-keyout', 'ca-key.pem', '-out', 'ca.pem']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server-key.pem', '-out', 'server.csr']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '1', '-extfile', 'san.ext', '-out', 'server.pem']);
  return join(dir, 'ca.pem');
}
