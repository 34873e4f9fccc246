// The https listener with a CA this test makes (as the seed's Harbor-with-cfssl setup does): real skopeo and
// containerd (ctr and CRI) pull through https://127.0.0.1:<port> trusting that CA, and refuse it without the CA.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildIndex, type BuiltIndex } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushIndex } from '../helpers/push.js';
import { skopeoCopyToOci } from '../helpers/skopeo.js';

/** A CA, and a server certificate it signed for 127.0.0.1 (Go clients need the IP in subjectAltName). */
function makeCa(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (n: string) => join(dir, n);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ocimirror test CA',
    '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', f('server.ext'), '-out', f('server.crt'));
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}

describe('TLS listener trusted through a test-made CA', () => {
  if (process.getuid?.() !== 0) throw new Error('this suite needs root: containerd mounts snapshots');
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];
  let work: string;
  let pki: ReturnType<typeof makeCa>;
  let dist: Distribution;
  let proxy: TestProxy;
  let containerd: Containerd | undefined;
  let index: BuiltIndex;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/ops-tls-');
    pki = makeCa(work);
    index = await buildIndex({ format: 'oci', platforms, label: 'tls index' });
    dist = await startDistribution();
    await pushIndex(dist.url, 'library/secure', '1.0', index);
    proxy = await startTestProxy({
      server: { tls: { cert_file: pki.certFile, key_file: pki.keyFile } },
      mirrors: { 'docker.io': { endpoint: [dist.url] } },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([containerd?.stop(), proxy?.close(), dist?.close()]);
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('listens on https and presents the CA-signed certificate', async () => {
    expect(proxy.url).toBe(`https://127.0.0.1:${proxy.port}`);
    const dispatcher = new Agent({ connect: { ca: readFileSync(pki.caFile) } });
    try {
      expect((await fetchFrom(proxy.url, '/healthz', { dispatcher })).status).toBe(200);
      const v2 = await fetchFrom(proxy.url, '/v2/', { dispatcher });
      expect(v2.headers['docker-distribution-api-version']).toBe('registry/2.0');
    } finally {
      await dispatcher.close();
    }
    // Without the CA a verifying client refuses the listener.
    await expect(pullThrough(proxy.url, 'library/secure', '1.0')).rejects.toThrow(/certificate/i);
  });

  it('skopeo with --src-cert-dir holding the CA copies every platform; without it, verification fails', async () => {
    const certDir = join(work, 'skopeo-certs');
    mkdirSync(certDir);
    // containers-certs.d(5): *.crt files in the directory are CA certificates. (An OCI index: copying a Docker list
    // into an oci: layout would convert it and change the digest.)
    writeFileSync(join(certDir, 'ca.crt'), readFileSync(pki.caFile));
    const dir = join(work, 'skopeo-oci');
    await skopeoCopyToOci(`docker://${proxy.host}/library/secure:1.0`, dir, '1.0', { all: true, srcTlsVerify: true, srcCertDir: certDir });
    const layout = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(layout.manifests[0]?.digest).toBe(index.manifestDigest);
    const empty = join(work, 'no-certs');
    mkdirSync(empty);
    await expect(skopeoCopyToOci(`docker://${proxy.host}/library/secure:1.0`, join(work, 'refused'), '1.0', { srcTlsVerify: true, srcCertDir: empty }))
      .rejects.toThrow(/x509|certificate/);
  });

  it('containerd with hosts.toml `ca = ...` pulls with ctr and through CRI; without ca it cannot', async () => {
    containerd = await startContainerd();
    const dead = await deadPort();
    const server = `http://127.0.0.1:${dead}`;
    writeHostsToml(containerd.hostsDir, 'docker.io', { server, hosts: [{ url: proxy.url }] });
    await expect(containerd.ctrPull('docker.io/library/secure:1.0', { timeoutMs: 60_000 })).rejects.toThrow(/x509|certificate/);

    writeHostsToml(containerd.hostsDir, 'docker.io', { server, hosts: [{ url: proxy.url, ca: pki.caFile }] });
    const pulled = await containerd.ctrPull('docker.io/library/secure:1.0');
    expect(pulled.digest).toBe(index.manifestDigest);
    const cri = criClient(containerd.socket, { hostsDir: containerd.hostsDir });
    try {
      await cri.pullImage('docker.io/library/secure:1.0');
    } finally {
      cri.close();
    }
    expect(await containerd.imageDigest('docker.io/library/secure:1.0', CRI_NAMESPACE)).toBe(index.manifestDigest);
    // Every request containerd made reached the proxy over TLS and was routed by ?ns=docker.io.
    expect(proxy.requests(/\/v2\/library\/secure\/manifests\/1\.0\?ns=docker\.io/).length).toBeGreaterThan(0);
  });
});
