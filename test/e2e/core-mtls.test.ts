// configs.<host>.tls with a client certificate: a real Distribution that demands one (http.tls.clientcas) and
// trusts only a test-made CA. The proxy pulls through it with ca_file + cert_file + key_file, and cannot without
// the client certificate.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRIBUTION_BIN, startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { fetchFrom, pullThrough, startTestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by that CA. */
function makePki(dir: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ocimirror test CA');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
}

describe('upstream TLS with a client certificate (configs.tls.cert_file / key_file)', () => {
  let work: string;
  let plain: Distribution | undefined;
  let mtls: ChildProcess | undefined;
  let port: number;
  let pushed: string;
  let unregister: (() => void) | undefined;

  beforeAll(async () => {
    work = makeTmpDir('ocimirror-mtls-');
    makePki(work);
    // Push through a plain registry, then serve the same storage from a Distribution that demands client certs.
    plain = await startDistribution();
    const image = await buildImage({ format: 'oci', label: 'mtls' });
    pushed = image.manifestDigest;
    await pushImage(plain.url, 'library/secure', '1.0', image);
    await plain.stop();
    port = await freePort();
    writeFileSync(join(work, 'registry.yml'), JSON.stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: plain.rootDir } },
      http: { addr: `127.0.0.1:${port}`, secret: 'mtls-test', tls: { certificate: join(work, 'server.pem'), key: join(work, 'server.key'), clientcas: [join(work, 'ca.pem')] } },
    }));
    mtls = spawn(DISTRIBUTION_BIN, ['serve', join(work, 'registry.yml')], { stdio: 'ignore' });
    const child = mtls;
    unregister = atProcessExit(() => { child.kill('SIGKILL'); });
    const agent = new Agent({ connect: { ca: readFileSync(join(work, 'ca.pem')), cert: readFileSync(join(work, 'client.pem')), key: readFileSync(join(work, 'client.key')) } });
    for (let i = 0; ; i++) {
      try {
        const res = await request(`https://127.0.0.1:${port}/v2/`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200) break;
      } catch (err) {
        if (i > 100) throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await agent.close();
  }, 120_000);

  afterAll(async () => {
    mtls?.kill('SIGTERM');
    unregister?.();
    await plain?.close();
    await removeTmpDir(work);
  });

  const config = (tls: Record<string, string>) => ({
    upstream: { connectTimeout: '2s' },
    mirrors: { 'docker.io': { endpoint: [`https://127.0.0.1:${port}`] } },
    configs: { [`127.0.0.1:${port}`]: { tls } },
  });

  it('pulls with the CA and the client certificate from configs', async () => {
    const proxy = await startTestProxy(config({ ca_file: join(work, 'ca.pem'), cert_file: join(work, 'client.pem'), key_file: join(work, 'client.key') }));
    try {
      const pulled = await pullThrough(proxy.url, 'library/secure', '1.0', { ns: 'docker.io' });
      expect(pulled.digest).toBe(pushed);
    } finally { await proxy.close(); }
  });

  it('fails (503, the endpoint named) when only the CA is configured: the registry demands a client certificate', async () => {
    const proxy = await startTestProxy(config({ ca_file: join(work, 'ca.pem') }));
    try {
      const res = await fetchFrom(proxy.url, '/v2/library/secure/manifests/1.0?ns=docker.io');
      expect(res.status).toBe(503);
      const err = JSON.parse(res.body.toString('utf8')).errors[0];
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.detail.attempts.join(' ')).toContain(`https://127.0.0.1:${port}`);
    } finally { await proxy.close(); }
  });
});
