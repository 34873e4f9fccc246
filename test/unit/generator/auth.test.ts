// Node files for a proxy that requires authentication (server.auth): K3s configs carry the credentials for the
// proxy host; hosts.toml, which has no credentials field, sends them as an Authorization header.
import { describe, expect, it } from 'vitest';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { generateHostsToml } from '../../../src/generator/hosts-toml.js';
import { generateK3s } from '../../../src/generator/k3s.js';
import type { GeneratorInput } from '../../../src/generator/target.js';

const input: GeneratorInput = {
  source: 'ocimirror.yaml',
  server: { url: 'https://mirror.lan:5000' },
  defaultRegistry: 'docker.io',
  mirrors: { 'docker.io': { endpoint: ['https://registry-1.docker.io'], rewrite: {} } },
  configs: {},
};
const auth = { username: 'node', password: 'p@ss:word' };
const expectedHeader = `Basic ${Buffer.from('node:p@ss:word').toString('base64')}`;

describe('generate with --auth-user', () => {
  it('k3s: configs for the proxy host carry auth beside the CA', () => {
    const doc = parseYaml(generateK3s(input, { auth, caFile: '/etc/ssl/mirror-ca.pem' }));
    expect(doc.configs['mirror.lan:5000']).toEqual({ auth: { username: 'node', password: 'p@ss:word' }, tls: { ca_file: '/etc/ssl/mirror-ca.pem' } });
  });

  it('hosts.toml: the proxy host sends an Authorization header; with --no-fallback the server does too', () => {
    const [file] = generateHostsToml(input, { auth });
    const t = parseToml(file!.text) as { host: Record<string, { header?: Record<string, string> }> };
    expect(t.host['https://mirror.lan:5000']?.header).toEqual({ Authorization: expectedHeader });
    const [strict] = generateHostsToml(input, { auth, noFallback: true });
    expect((parseToml(strict!.text) as { header?: Record<string, string> }).header).toEqual({ Authorization: expectedHeader });
  });

  it('without --auth-user nothing about credentials is written', () => {
    expect(generateK3s(input)).not.toContain('auth');
    expect(generateHostsToml(input)[0]!.text).not.toContain('Authorization');
  });
});
