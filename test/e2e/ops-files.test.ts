// The operational files: docker-compose.yml passes Debian's docker-compose (no engine runs here), every example
// configuration loads with the real loader, the K3s manifests fit together, and the Dockerfile keeps its promises.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const tmp = makeTmpDir('ocimirror-ops-files-');
afterAll(async () => { await removeTmpDir(tmp); });

describe('docker-compose.yml', () => {
  it('is accepted by `docker-compose -f docker-compose.yml config`', () => {
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
    const doc = YAML.parse(out) as { services: Record<string, Record<string, unknown>>; networks: Record<string, { external?: boolean; name?: string }> };
    const svc = doc.services.ocimirror!;
    expect(svc.build).toMatchObject({ context: ROOT });
    expect(svc.restart).toBe('unless-stopped');
    expect(svc.ports).toEqual([expect.objectContaining({ published: 5000, target: 5000 })]);
    expect(svc.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/:\/etc\/ocimirror\/ocimirror\.yaml:ro$/), 'ocimirror-cache:/var/lib/ocimirror:rw']));
    expect(JSON.stringify(svc.healthcheck)).toContain('/healthz');
    expect(doc.networks.harbor).toMatchObject({ external: true, name: 'harbor_harbor' });
  });

  it('mounts a configuration file that exists and loads', () => {
    const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    const mounted = /- \.\/(\S+):\/etc\/ocimirror\/ocimirror\.yaml:ro/.exec(text)?.[1];
    expect(mounted).toBeDefined();
    expect(loadExample(join(ROOT, mounted!)).cache.dir).toBe('/var/lib/ocimirror');
  });
});

let loads = 0;

/** Loads an example as the proxy would, after creating the files it names under a temp root instead of /etc. */
function loadExample(file: string) {
  const text = readFileSync(file, 'utf8');
  const root = join(tmp, `${file.replace(/\W+/g, '_')}-${++loads}`);
  // Quoted values only: comments also mention directories under /etc/ocimirror.
  for (const [, path = ''] of text.matchAll(/"(\/etc\/ocimirror\/[^"]+)"/g)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), 'placeholder');
  }
  const relocated = join(root, 'ocimirror.yaml');
  writeFileSync(relocated, text.replaceAll('/etc/ocimirror/', `${root}/etc/ocimirror/`));
  return loadConfig(relocated);
}

describe('config/examples', () => {
  const dir = join(ROOT, 'config', 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  it('has the seed setup (Harbor + Docker Hub chain) and an air-gapped setup', () => {
    expect(files).toEqual(expect.arrayContaining(['harbor-dockerhub-chain.yaml', 'air-gapped-harbor.yaml']));
  });

  it.each(files)('%s loads with loadConfig, and with its TLS files checked', (name) => {
    const config = loadExample(join(dir, name));
    expect(Object.keys(config.mirrors).length).toBeGreaterThan(0);
    expect(config.upstream.appendDefaultEndpoint).toBe(false);
  });

  it('the seed chain tries Harbor, an accelerator, then Docker Hub; credentials are keyed to Harbor alone', () => {
    const config = loadExample(join(dir, 'harbor-dockerhub-chain.yaml'));
    expect(config.mirrors['docker.io']?.endpoint).toEqual(['https://harbor.example.com/v2/dockerhub', 'https://mirror.ccs.tencentyun.com', 'https://registry-1.docker.io']);
    expect(Object.keys(config.configs)).toEqual(['harbor.example.com']);
  });

  it('the air-gapped setup names no endpoint outside Harbor', () => {
    const config = loadExample(join(dir, 'air-gapped-harbor.yaml'));
    const hosts = Object.values(config.mirrors).flatMap((m) => m.endpoint.map((e) => new URL(e).host));
    expect(new Set(hosts)).toEqual(new Set(['harbor.example.com']));
  });
});

describe('config/k8s', () => {
  const dir = join(ROOT, 'config', 'k8s');
  const docs = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown }));
  const byKind = (kind: string) => docs.find((d) => d.kind === kind) as Record<string, any>;

  it('has a Deployment, Service, PersistentVolumeClaim and ConfigMap in one namespace', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Service']);
    expect(new Set(docs.map((d) => d.metadata.namespace))).toEqual(new Set(['kube-system']));
  });

  it('the ConfigMap holds a configuration that loads, whose server.url is the Service address', () => {
    const cm = byKind('ConfigMap');
    const config = parseConfig('configmap:ocimirror.yaml', cm.data['ocimirror.yaml']);
    const svc = byKind('Service');
    expect(config.server.url).toBe(`http://${svc.spec.clusterIP}:${svc.spec.ports[0].port}`);
    expect(config.cache.dir).toBe('/var/lib/ocimirror');
  });

  it('the Deployment mounts the ConfigMap and the claim where the image expects them, and probes the health routes', () => {
    const dep = byKind('Deployment');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(dep.spec.selector.matchLabels).toEqual(byKind('Service').spec.selector);
    expect(pod.volumes).toEqual(expect.arrayContaining([
      { name: 'config', configMap: { name: byKind('ConfigMap').metadata.name } },
      { name: 'cache', persistentVolumeClaim: { claimName: byKind('PersistentVolumeClaim').metadata.name } },
    ]));
    expect(c.volumeMounts).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'config', mountPath: '/etc/ocimirror' }), expect.objectContaining({ name: 'cache', mountPath: '/var/lib/ocimirror' }),
    ]));
    expect(c.args).toEqual(['serve', '--config', '/etc/ocimirror/ocimirror.yaml']);
    expect([c.startupProbe.httpGet.path, c.readinessProbe.httpGet.path, c.livenessProbe.httpGet.path]).toEqual(['/readyz', '/healthz', '/healthz']);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('builds in one stage and runs production dependencies only, as a non-root user', () => {
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^RUN npm ci --omit=dev --ignore-scripts/m);
    expect(text).toMatch(/^COPY --from=build \/src\/dist \.\/dist$/m);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^VOLUME \/var\/lib\/ocimirror$/m);
    expect(text).toContain('ENTRYPOINT ["node", "/app/bin/ocimirror.js"]');
    expect(text).toContain('CMD ["serve", "--config", "/etc/ocimirror/ocimirror.yaml"]');
    expect(text).toMatch(/^HEALTHCHECK [\s\S]*fetch\(process\.env\.OCIMIRROR_HEALTH_URL\)/m);
  });

  it('its sed moves the default cache dir onto the volume (the line it edits still exists)', () => {
    expect(readFileSync(join(ROOT, 'config', 'ocimirror.yaml'), 'utf8')).toMatch(/^ {2}dir: "\.\/data"$/m);
  });
});
