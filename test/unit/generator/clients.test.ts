import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { generateHostsToml } from '../../../src/generator/hosts-toml.js';
import { generateRegistriesConf } from '../../../src/generator/registries-conf.js';
import { generateDaemonJson } from '../../../src/generator/daemon-json.js';
import { migrationTarget } from '../../../src/generator/migrate.js';
import type { GeneratorInput } from '../../../src/generator/target.js';
import { FIXTURES, SEEDS, seedMigration } from './seeds.js';

const input = (over: Partial<GeneratorInput> = {}): GeneratorInput => ({
  source: 'ocimirror.yaml',
  server: { url: 'http://mirror.lan:5000' },
  defaultRegistry: 'docker.io',
  mirrors: {
    'docker.io': { endpoint: ['https://registry-1.docker.io'], rewrite: {} },
    'registry.lan:5000': { endpoint: ['http://registry.lan:5000'], rewrite: {} },
    '*': { endpoint: [], rewrite: {} },
  },
  configs: {},
  ...over,
});

describe('generate hosts-toml', () => {
  it('writes <registry>/hosts.toml per mirror, "_default" for "*", host:port as the directory', () => {
    const files = generateHostsToml(input());
    expect(files.map((f) => f.path)).toEqual(['docker.io/hosts.toml', 'registry.lan:5000/hosts.toml', '_default/hosts.toml']);
  });

  it('lists the proxy as a pull/resolve host with no path, and the registry itself as server', () => {
    const [docker, lan, wildcard] = generateHostsToml(input()).map((f) => parseToml(f.text));
    expect(docker).toEqual({ server: 'https://registry-1.docker.io', host: { 'http://mirror.lan:5000': { capabilities: ['pull', 'resolve'] } } });
    // A plain-http registry keeps its scheme for the fallback; K3s's rule would have made it https.
    expect(lan?.server).toBe('http://registry.lan:5000');
    // No server for "*": containerd then falls back to whichever registry was asked for.
    expect(wildcard).toEqual({ host: { 'http://mirror.lan:5000': { capabilities: ['pull', 'resolve'] } } });
  });

  it('never sets override_path: containerd appends /v2 to the proxy root, where the proxy serves it', () => {
    for (const f of generateHostsToml(input())) expect(f.text).not.toMatch(/^\s*override_path/m);
  });

  it('gives an https proxy its CA, and with --no-fallback makes the proxy the server too', () => {
    const [docker] = generateHostsToml(input({ server: { url: 'https://mirror.lan:5443' } }), { caFile: '/etc/ssl/ca.pem', noFallback: true });
    const doc = parseToml(docker?.text ?? '');
    expect(doc).toEqual({
      server: 'https://mirror.lan:5443', capabilities: ['pull', 'resolve'], ca: '/etc/ssl/ca.pem',
      host: { 'https://mirror.lan:5443': { capabilities: ['pull', 'resolve'], ca: '/etc/ssl/ca.pem' } },
    });
    expect(docker?.text).toContain('containerd always tries `server` last');
  });

  for (const seed of SEEDS) {
    it(`${seed}: golden hosts.toml files`, async () => {
      for (const f of generateHostsToml(migrationTarget(seedMigration(seed)))) {
        await expect(f.text).toMatchFileSnapshot(join(FIXTURES, 'golden', seed, 'hosts-toml', f.path.replace(/:/g, '_')));
      }
    });
  }
});

describe('generate registries-conf', () => {
  it('mirrors each registry through <proxy host>/<registry>, insecure for an http proxy', () => {
    const doc = parseToml(generateRegistriesConf(input())) as { registry: unknown[] };
    expect(doc.registry).toEqual([
      { prefix: 'docker.io', location: 'docker.io', mirror: [{ location: 'mirror.lan:5000/docker.io', insecure: true }] },
    ]);
  });

  it('leaves out "*" and registries with a port (not a valid path prefix) and says so', () => {
    const text = generateRegistriesConf(input());
    expect(text).toContain('"*"');
    expect(text).toContain('Left out: registry.lan:5000');
  });

  it('for an https proxy sets no insecure and names where the CA goes; --no-fallback makes location the proxy', () => {
    const text = generateRegistriesConf(input({ server: { url: 'https://mirror.lan:5443' } }), { caFile: '/etc/ssl/ca.pem', noFallback: true });
    expect((parseToml(text) as { registry: unknown[] }).registry).toEqual([{ prefix: 'docker.io', location: 'mirror.lan:5443/docker.io' }]);
    expect(text).toContain('/etc/containers/certs.d/mirror.lan:5443/ca.crt');
  });

  for (const seed of SEEDS) {
    it(`${seed}: golden registries.conf`, async () => {
      const text = generateRegistriesConf(migrationTarget(seedMigration(seed)));
      parseToml(text);
      await expect(text).toMatchFileSnapshot(join(FIXTURES, 'golden', seed, 'registries.conf'));
    });
  }
});

describe('generate daemon-json', () => {
  it('sets registry-mirrors, and insecure-registries for an http proxy', () => {
    const out = generateDaemonJson(input());
    expect(JSON.parse(out.text)).toEqual({ 'registry-mirrors': ['http://mirror.lan:5000'], 'insecure-registries': ['mirror.lan:5000'] });
    expect(out.notes.join('\n')).toMatch(/docker\.io images only/);
    expect(out.notes.join('\n')).toContain('registry.lan:5000');
  });

  it('has no insecure-registries for an https proxy', () => {
    expect(JSON.parse(generateDaemonJson(input({ server: { url: 'https://mirror.lan' } })).text)).toEqual({ 'registry-mirrors': ['https://mirror.lan'] });
  });

  it('refuses a proxy that does not serve docker.io for requests without a registry name', () => {
    expect(() => generateDaemonJson(input({ defaultRegistry: 'quay.io' }))).toThrow(/defaultRegistry: docker.io/);
    expect(() => generateDaemonJson(input({ mirrors: { 'quay.io': { endpoint: [], rewrite: {} } } }))).toThrow(/does not mirror docker.io/);
  });
});
