// A stand-in for the seed tutorial's Harbor: its own compose project "harbor" (so its network is harbor_harbor, as
// Harbor's installer makes it), one container named `harbor` running CNCF Distribution (Harbor's registry component)
// with HTTPS from a CA made by real cfssl the tutorial's way, htpasswd users, and images under a project path
// (/v2/k3s/...). The host's own Distribution binary runs in the offline base image; images are pushed beforehand
// into its storage by a plain-HTTP Distribution on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Compose } from './compose.js';
import { BASE_IMAGE, pinBridge, podman } from './containers.js';
import { DISTRIBUTION_BIN, startDistribution } from './distribution.js';
import type { BuiltImage } from './images.js';
import { pushImage } from './push.js';
import { makeTmpDir, removeTmpDir } from './tmp.js';

export const HARBOR_NETWORK = 'harbor_harbor';
export const HARBOR_CONTAINER = 'harbor';

export interface HarborStandin {
  readonly dir: string;
  /** cfssl's ca.pem: what ocimirror must trust for https://harbor. */
  readonly caFile: string;
  readonly username: string;
  readonly password: string;
  up(compose: Compose): Promise<void>;
  down(compose: Compose): Promise<void>;
  /** Distribution's log inside the container (its access log included). */
  logs(): Promise<string>;
  remove(): Promise<void>;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const NAMES = [{ C: 'CN', L: 'Beijing', ST: 'Beijing' }];

/** The tutorial's steps: ca-config.json + ca-csr.json → ca.pem, then a server certificate for the Harbor host. */
function cfsslPki(ssl: string, host: string): void {
  mkdirSync(ssl, { recursive: true });
  const usages = ['signing', 'key encipherment', 'server auth', 'client auth'];
  writeFileSync(join(ssl, 'ca-config.json'), json({ signing: { default: { expiry: '87600h' }, profiles: { kubernetes: { expiry: '87600h', usages } } } }));
  writeFileSync(join(ssl, 'ca-csr.json'), json({ CN: 'kubernetes', key: { algo: 'rsa', size: 2048 }, names: NAMES }));
  // The tutorial leaves "hosts" empty; TLS clients (Go, Node) check only subjectAltName, so the host goes there.
  writeFileSync(join(ssl, `${host}-csr.json`), json({ CN: host, hosts: [host], key: { algo: 'rsa', size: 2048 }, names: NAMES }));
  const sh = (script: string) => execFileSync('bash', ['-c', `set -euo pipefail; ${script}`], { cwd: ssl, stdio: ['ignore', 'ignore', 'pipe'] });
  sh('cfssl gencert -initca ca-csr.json | cfssljson -bare ca -');
  sh(`cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes ${host}-csr.json | cfssljson -bare ${host}`);
}

export async function makeHarborStandin(images: { repo: string; tag: string; image: BuiltImage }[]): Promise<HarborStandin> {
  const dir = makeTmpDir('ocimirror-harbor-');
  const username = 'admin';
  const password = 'Harbor12345';
  cfsslPki(join(dir, 'ssl'), HARBOR_CONTAINER);
  writeFileSync(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', username, password]));
  const storage = join(dir, 'storage');
  const seed = await startDistribution({ rootDir: storage });
  try {
    for (const i of images) await pushImage(seed.url, i.repo, i.tag, i.image);
  } finally {
    await seed.close();
  }
  writeFileSync(join(dir, 'config.yml'), json({
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: '/var/lib/registry' }, delete: { enabled: true } },
    http: { addr: ':443', secret: 'harbor-standin', tls: { certificate: `/etc/registry/ssl/${HARBOR_CONTAINER}.pem`, key: `/etc/registry/ssl/${HARBOR_CONTAINER}-key.pem` } },
    auth: { htpasswd: { realm: 'harbor-registry', path: '/etc/registry/htpasswd' } },
  }));
  // JSON is YAML: the compose file is written as JSON to keep the quoting obvious.
  writeFileSync(join(dir, 'docker-compose.yml'), json({
    version: '3.8',
    services: {
      registry: {
        image: BASE_IMAGE,
        container_name: HARBOR_CONTAINER,
        command: ['/usr/bin/docker-registry', 'serve', '/etc/registry/config.yml'],
        volumes: [
          `${DISTRIBUTION_BIN}:/usr/bin/docker-registry:ro`, './config.yml:/etc/registry/config.yml:ro', './ssl:/etc/registry/ssl:ro',
          './htpasswd:/etc/registry/htpasswd:ro', './storage:/var/lib/registry',
        ],
        networks: ['harbor'],
      },
    },
    networks: { harbor: {} },
  }));
  const compose = (c: Compose, args: string[]) => c.run(['-p', 'harbor', '-f', join(dir, 'docker-compose.yml'), ...args]);
  const logs = async () => { const r = await podman(['logs', HARBOR_CONTAINER]); return r.stdout + r.stderr; };
  return {
    dir, caFile: join(dir, 'ssl', 'ca.pem'), username, password, logs,
    async up(c) {
      await compose(c, ['up', '-d']);
      const deadline = Date.now() + 30_000;
      while (!/listening on .*443, tls/.test(await logs())) {
        if (Date.now() > deadline) throw new Error(`the Harbor stand-in did not start:\n${await logs()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // Later containers joining harbor_harbor must not cost this one its gateway (and DNS): see podman-env.sh.
      await pinBridge(HARBOR_NETWORK);
    },
    async down(c) {
      await compose(c, ['down', '-t', '2']);
    },
    async remove() {
      await removeTmpDir(dir);
    },
  };
}
