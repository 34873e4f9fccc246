// A proxy that requires authentication (server.auth, htpasswd bcrypt): real containerd (ctr and CRI) pulls with
// the hosts.toml `generate hosts-toml --auth-user` writes, and is refused without it; real skopeo with --src-creds.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateHostsToml } from '../../src/generator/hosts-toml.js';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { installHostsTomlFiles } from '../helpers/hosts-toml.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage } from '../helpers/images.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { skopeo } from '../helpers/skopeo.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const USER = 'k3s-node';
const PASSWORD = 'correct horse battery';

describe('a proxy that requires authentication', () => {
  if (process.getuid?.() !== 0) throw new Error('ops-auth e2e needs root: containerd mounts overlays');

  let work: string;
  let registry: Distribution | undefined;
  let proxy: TestProxy | undefined;
  let containerd: Containerd | undefined;
  let pushed: string;

  function installHostsToml(auth?: { username: string; password: string }): void {
    const input = { ...proxy!.config, source: 'e2e', server: { url: proxy!.url } };
    installHostsTomlFiles(containerd!.hostsDir, generateHostsToml(input, { noFallback: true, ...(auth ? { auth } : {}) }));
  }

  beforeAll(async () => {
    work = makeTmpDir('ocimirror-auth-e2e-');
    registry = await startDistribution();
    const image = await buildImage({ format: 'docker', label: 'auth' });
    pushed = image.manifestDigest;
    await pushImage(registry.url, 'library/locked', '1.0', image);
    writeFileSync(join(work, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' }));
    proxy = await startTestProxy({ server: { auth: { htpasswd: join(work, 'htpasswd') } }, mirrors: { 'docker.io': { endpoint: [registry.url] } } });
    containerd = await startContainerd();
  }, 120_000);

  afterAll(async () => {
    const results = await Promise.allSettled([containerd?.stop(), proxy?.close(), registry?.close()]);
    await removeTmpDir(work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  afterEach(async () => { await containerd!.removeImage('docker.io/library/locked:1.0'); });

  it('refuses containerd without credentials: nothing reaches the upstream', async () => {
    installHostsToml();
    registry!.resetLog();
    await expect(containerd!.ctrPull('docker.io/library/locked:1.0')).rejects.toThrow(/401|unauthorized|authorization/i);
    await registry!.flushLog();
    expect(registry!.count('GET', /\/v2\/library\/locked\//) + registry!.count('HEAD', /\/v2\/library\/locked\//)).toBe(0);
  });

  it('ctr pulls with the Authorization header the generated hosts.toml carries', async () => {
    installHostsToml({ username: USER, password: PASSWORD });
    expect((await containerd!.ctrPull('docker.io/library/locked:1.0')).digest).toBe(pushed);
  });

  it('the CRI plugin pulls with the same hosts.toml', async () => {
    installHostsToml({ username: USER, password: PASSWORD });
    const cri = criClient(containerd!.socket, { hostsDir: containerd!.hostsDir });
    try {
      await cri.pullImage('docker.io/library/locked:1.0');
      expect(await containerd!.imageDigest('docker.io/library/locked:1.0', CRI_NAMESPACE)).toBe(pushed);
      await cri.removeImage('docker.io/library/locked:1.0');
    } finally {
      cri.close();
    }
  });

  it('skopeo needs --src-creds, and the password never appears in the proxy log', async () => {
    const ref = `docker://${new URL(proxy!.url).host}/library/locked:1.0`;
    await expect(skopeo(['inspect', '--raw', '--no-tags', '--tls-verify=false', ref])).rejects.toThrow(/unauthorized|authentication required|401/i);
    const { stdout } = await skopeo(['inspect', '--raw', '--no-tags', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, ref]);
    expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(pushed);
    expect(proxy!.logText()).not.toContain(PASSWORD);
    expect(proxy!.logText()).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
  });
});
