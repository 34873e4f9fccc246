import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { parse } from 'yaml';
import { generateK3s } from '../../../src/generator/k3s.js';
import { migrationTarget } from '../../../src/generator/migrate.js';
import type { GeneratorInput } from '../../../src/generator/target.js';
import { checkRegistriesText } from '../../../src/generator/check/registries-file.js';
import { FIXTURES, SEEDS, seedMigration } from './seeds.js';

const input = (over: Partial<GeneratorInput> = {}): GeneratorInput => ({
  source: 'ocimirror.yaml',
  server: { url: 'http://mirror.lan:5000' },
  defaultRegistry: 'docker.io',
  mirrors: {
    'docker.io': { endpoint: ['https://registry-1.docker.io'], rewrite: {} },
    '*': { endpoint: [], rewrite: {} },
    'quay.io': { endpoint: ['quay.io/'], rewrite: {} },
  },
  configs: {},
  ...over,
});

describe('generate k3s', () => {
  it('points every served registry at the proxy, "*" last, with a header saying how to apply it', () => {
    const text = generateK3s(input());
    expect(parse(text)).toEqual({
      mirrors: {
        'docker.io': { endpoint: ['http://mirror.lan:5000'] },
        'quay.io': { endpoint: ['http://mirror.lan:5000'] },
        '*': { endpoint: ['http://mirror.lan:5000'] },
      },
    });
    expect(text).toContain('  "*":\n');
    expect(text).toMatch(/^# .*ocimirror proxy at http:\/\/mirror\.lan:5000/);
    expect(text).toContain('/etc/rancher/k3s/registries.yaml');
    expect(text).toContain('systemctl restart k3s');
    expect(text).toContain('from ocimirror.yaml');
  });

  it('gives the proxy host a ca_file under configs for an https proxy with a private CA', () => {
    const doc = parse(generateK3s(input({ server: { url: 'https://Mirror.LAN:5443/' } }), { caFile: '/etc/ssl/ocimirror-ca.pem' }));
    expect(doc.mirrors['docker.io'].endpoint).toEqual(['https://mirror.lan:5443']);
    expect(doc.configs).toEqual({ 'mirror.lan:5443': { tls: { ca_file: '/etc/ssl/ocimirror-ca.pem' } } });
  });

  it('refuses a proxy URL with a path (containerd would append /v2 after it) and --ca-file for http', () => {
    expect(() => generateK3s(input({ server: { url: 'http://mirror.lan:5000/v2' } }))).toThrow(/without a path/);
    expect(() => generateK3s(input(), { caFile: '/ca.pem' })).toThrow(/only applies to an https proxy/);
  });

  it('with --fallback keeps the normalised original endpoints after the proxy, never a trailing slash', () => {
    const doc = parse(generateK3s(input(), { fallback: true }));
    expect(doc.mirrors['quay.io'].endpoint).toEqual(['http://mirror.lan:5000', 'https://quay.io']);
    expect(doc.mirrors['docker.io'].endpoint).toEqual(['http://mirror.lan:5000', 'https://registry-1.docker.io']);
    expect(doc.mirrors['*'].endpoint).toEqual(['http://mirror.lan:5000']);
  });

  it('with --fallback leaves out the original endpoints of a mirror with rewrites (the proxy applies them)', () => {
    const mirrors = { 'docker.io': { endpoint: ['https://harbor.lan'], rewrite: { '^rancher/(.*)': 'mirror/$1' } } };
    const text = generateK3s(input({ mirrors }), { fallback: true });
    expect(parse(text).mirrors['docker.io']).toEqual({ endpoint: ['http://mirror.lan:5000'] });
    expect(text).not.toContain('rewrite:');
  });

  it('for K3s v1.21 drops configs."*" (containerd 1.4 never reads it) and says why', () => {
    const configs = { '*': { tls: { insecure_skip_verify: true } }, 'harbor.lan': { auth: { username: 'u', password: 'p' } } };
    const current = parse(generateK3s(input({ configs }), { fallback: true }));
    expect(Object.keys(current.configs)).toEqual(['harbor.lan', '*']);
    const text = generateK3s(input({ configs }), { fallback: true, k3s: 'v1.21' });
    expect(Object.keys(parse(text).configs)).toEqual(['harbor.lan']);
    expect(text).toContain('configs."*" left out');
    expect(text).toContain('failureStatus: 404');
  });

  it('quotes every string so that values like "yes", "0x10" or "123456" stay strings', () => {
    const configs = { 'harbor.lan': { auth: { username: 'yes', password: '123456' } } };
    const doc = parse(generateK3s(input({ configs }), { fallback: true }));
    expect(doc.configs['harbor.lan'].auth).toEqual({ username: 'yes', password: '123456' });
  });
});

describe('generate k3s golden files for the seed tutorial', () => {
  for (const seed of SEEDS) {
    it(`${seed}: node file, current K3s`, async () => {
      const text = generateK3s(migrationTarget(seedMigration(seed)));
      await expect(text).toMatchFileSnapshot(join(FIXTURES, 'golden', seed, 'k3s.yaml'));
    });
    it(`${seed}: node file, K3s v1.21, https proxy with CA, with fallback`, async () => {
      const text = generateK3s(migrationTarget(seedMigration(seed, 'https://mirror.lan:5443')), { k3s: 'v1.21', fallback: true, caFile: '/etc/ssl/ocimirror-ca.pem' });
      await expect(text).toMatchFileSnapshot(join(FIXTURES, 'golden', seed, 'k3s-v1.21-fallback.yaml'));
      // What we generate must pass our own checker (certificate files live on the node, not here).
      const findings = checkRegistriesText('k3s.yaml', text, { checkFiles: false, base: FIXTURES });
      expect(findings.filter((f) => f.code !== 'password-plaintext')).toEqual([]);
    });
  }
});
