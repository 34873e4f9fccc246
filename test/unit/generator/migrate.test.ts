import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig, loadRegistriesFile, ConfigError } from '../../../src/config/load.js';
import { generateK3s } from '../../../src/generator/k3s.js';
import { generateProxyConfig, migrationTarget } from '../../../src/generator/migrate.js';
import { checkRegistriesText } from '../../../src/generator/check/registries-file.js';
import { checkOcimirrorConfigText } from '../../../src/generator/check/ocimirror-config.js';
import { FIXTURES, SEEDS, seedMigration } from './seeds.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'ocimirror-migrate-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** The TLS paths a seed names, mapped to readable files here (loadConfig checks they exist on the proxy host). */
function withLocalTlsFiles(text: string): string {
  return text.replace(/"(\/home\/[^"]+)"/g, (_, path: string) => {
    const local = join(dir, path.replace(/\//g, '_'));
    writeFileSync(local, 'placeholder\n');
    return JSON.stringify(local);
  });
}

describe('generate k3s --from: migration round trip for the seed tutorial', () => {
  for (const seed of SEEDS) {
    it(`${seed}: the proxy configuration loads with loadConfig and holds the original mirrors and configs`, async () => {
      const m = seedMigration(seed);
      const text = generateProxyConfig(m);
      await expect(text).toMatchFileSnapshot(join(FIXTURES, 'golden', seed, 'proxy.yaml'));
      const file = join(dir, `${seed}.proxy.yaml`);
      writeFileSync(file, withLocalTlsFiles(text));
      const config = loadConfig(file);
      const original = loadRegistriesFile(join(FIXTURES, `${seed}.yaml`), { checkFiles: false });
      expect(config.server.url).toBe('http://mirror.lan:5000');
      expect(config.server.listen).toEqual({ host: '0.0.0.0', port: 5000 });
      expect(config.upstream.appendDefaultEndpoint).toBe(true);
      expect(config.mirrors).toEqual(original.mirrors);
      expect(Object.keys(config.configs).sort()).toEqual(Object.keys(original.configs).sort());
      for (const [host, entry] of Object.entries(original.configs)) expect(config.configs[host]?.auth).toEqual(entry.auth);
    });

    it(`${seed}: the node file sends every original registry to the proxy and passes check`, () => {
      const m = seedMigration(seed);
      const nodeFile = join(dir, `${seed}.node.yaml`);
      const text = generateK3s(migrationTarget(m));
      writeFileSync(nodeFile, text);
      const node = loadRegistriesFile(nodeFile);
      expect(Object.keys(node.mirrors).sort()).toEqual(Object.keys(m.mirrors).sort());
      for (const entry of Object.values(node.mirrors)) expect(entry.endpoint).toEqual(['http://mirror.lan:5000']);
      expect(node.configs).toEqual({});
      expect(checkRegistriesText(nodeFile, text, { checkFiles: false, base: dir }).filter((f) => f.severity !== 'info')).toEqual([]);
    });
  }

  it('the proxy configuration without its TLS files fails to load only because those files are missing', () => {
    const file = join(dir, 'full-missing.yaml');
    writeFileSync(file, generateProxyConfig(seedMigration('seed-full')));
    const error = (() => { try { loadConfig(file); return undefined; } catch (e) { return e; } })();
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(3);
    for (const p of problems) expect(p).toMatch(/configs\."harbor2\.kingsd\.top"\.tls\.(ca|cert|key)_file: expected a readable file/);
  });

  it('an https proxy gets server.tls placeholders, and passes check --config apart from those files', () => {
    const text = generateProxyConfig(seedMigration('seed-harbor-auth', 'https://mirror.lan:5443'));
    const doc = parse(text);
    expect(doc.server).toEqual({ listen: '0.0.0.0:5443', url: 'https://mirror.lan:5443', tls: { cert_file: '/etc/ocimirror/tls.crt', key_file: '/etc/ocimirror/tls.key' } });
    const findings = checkOcimirrorConfigText('proxy.yaml', text, { checkFiles: false, base: dir });
    expect(findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('says in both files which is which', () => {
    const m = seedMigration('seed-http');
    expect(generateProxyConfig(m)).toMatch(/^# ocimirror proxy configuration \(the PROXY file\)/);
    expect(generateK3s(migrationTarget(m))).toMatch(/^# K3s registries\.yaml \(the NODE file\)/);
  });
});
