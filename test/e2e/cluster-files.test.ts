// The cluster's deployment files: the K3s manifests in config/k8s/cluster/ fit together (three spread replicas, a
// PodDisruptionBudget, Redis, a Secret for the keys; the ConfigMap loads and points at that Redis), and the compose
// example (three replicas behind nginx, with Redis) passes Debian's docker-compose and names every replica.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load.js';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const SECRET = { OCIMIRROR_CLUSTER_SECRET: 'x'.repeat(32) };

type Doc = Record<string, any>;

describe('config/k8s/cluster', () => {
  const dir = join(ROOT, 'config', 'k8s', 'cluster');
  const docs: Doc[] = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Doc));
  const named = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name)!;

  it('has three ocimirror replicas, a PodDisruptionBudget, a Redis with its Service, a Secret, a ConfigMap and the Service', () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
      'ConfigMap/ocimirror-config', 'Deployment/ocimirror', 'Deployment/ocimirror-redis', 'PodDisruptionBudget/ocimirror',
      'Secret/ocimirror-cluster', 'Service/ocimirror', 'Service/ocimirror-redis',
    ]);
    expect(new Set(docs.map((d) => d.metadata.namespace))).toEqual(new Set(['kube-system']));
    const dep = named('Deployment', 'ocimirror');
    expect(dep.spec.replicas).toBe(3);
    expect(named('PodDisruptionBudget', 'ocimirror').spec).toEqual({ minAvailable: 2, selector: dep.spec.selector });
    expect(named('Service', 'ocimirror').spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(named('Service', 'ocimirror-redis').spec.selector).toEqual(named('Deployment', 'ocimirror-redis').spec.selector.matchLabels);
  });

  it('each pod advertises its own IP and takes the keys and the cluster secret from the Secret', () => {
    const c = named('Deployment', 'ocimirror').spec.template.spec.containers[0];
    expect(c.env).toEqual(expect.arrayContaining([
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'OCIMIRROR_ADVERTISE_URL', value: 'http://$(POD_IP):5000' },
    ]));
    expect(c.envFrom).toEqual([{ secretRef: { name: 'ocimirror-cluster' } }]);
    expect(Object.keys(named('Secret', 'ocimirror-cluster').stringData).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'OCIMIRROR_CLUSTER_SECRET']);
  });

  it('the ConfigMap loads as a cluster on S3 whose Redis is the Redis Service', () => {
    const text = named('ConfigMap', 'ocimirror-config').data['ocimirror.yaml'];
    const config = parseConfig('configmap:ocimirror.yaml', text, { env: { ...SECRET, OCIMIRROR_ADVERTISE_URL: 'http://10.42.0.7:5000' } });
    expect(config.cache.store).toMatchObject({ type: 's3', bucket: 'ocimirror' });
    expect(config.cluster).toMatchObject({ redis: 'redis://ocimirror-redis.kube-system.svc:6379', advertiseUrl: 'http://10.42.0.7:5000' });
    const svc = named('Service', 'ocimirror');
    expect(config.server.url).toBe(`http://${svc.spec.clusterIP}:${svc.spec.ports[0].port}`);
  });
});

describe('config/examples/cluster (compose)', () => {
  const dir = join(ROOT, 'config', 'examples', 'cluster');
  const env = { ...process.env, ...SECRET, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' };

  it('is accepted by `docker-compose config`: three replicas with their own advertiseUrl, Redis and nginx', () => {
    const out = execFileSync('docker-compose', ['-f', join(dir, 'docker-compose.yml'), 'config'], { encoding: 'utf8', stdio: 'pipe', env });
    const services = (YAML.parse(out) as { services: Record<string, Doc> }).services;
    expect(Object.keys(services).sort()).toEqual(['nginx', 'ocimirror-1', 'ocimirror-2', 'ocimirror-3', 'redis']);
    for (const n of [1, 2, 3]) {
      const s = services[`ocimirror-${n}`]!;
      expect(s.environment).toMatchObject({ OCIMIRROR_ADVERTISE_URL: `http://ocimirror-${n}:5000`, ...SECRET });
      expect(s.build).toMatchObject({ context: ROOT });
    }
    expect(services.nginx!.ports).toEqual([expect.objectContaining({ published: 5000, target: 5000 })]);
  });

  it('refuses to render without the secrets in the environment', () => {
    const { OCIMIRROR_CLUSTER_SECRET: _, ...without } = env;
    expect(() => execFileSync('docker-compose', ['-f', join(dir, 'docker-compose.yml'), 'config'], { encoding: 'utf8', stdio: 'pipe', env: without }))
      .toThrow(/OCIMIRROR_CLUSTER_SECRET/);
  });

  it('nginx balances over the three replicas and keeps the replicas\' internal route to themselves', () => {
    const conf = readFileSync(join(dir, 'nginx.conf'), 'utf8');
    expect([...conf.matchAll(/server (ocimirror-\d):5000/g)].map((m) => m[1])).toEqual(['ocimirror-1', 'ocimirror-2', 'ocimirror-3']);
    expect(conf).toMatch(/location \/_ocimirror\/ \{ return 404; \}/);
    expect(conf).toMatch(/proxy_buffering off;/);
  });

  it('the replicas\' configuration loads as a cluster on S3 with the compose Redis', () => {
    const config = parseConfig('ocimirror.yaml', readFileSync(join(dir, 'ocimirror.yaml'), 'utf8'), { env: { ...SECRET, OCIMIRROR_ADVERTISE_URL: 'http://ocimirror-1:5000' } });
    expect(config.cluster).toMatchObject({ redis: 'redis://redis:6379', advertiseUrl: 'http://ocimirror-1:5000' });
    expect(config.cache.store.type).toBe('s3');
  });
});
