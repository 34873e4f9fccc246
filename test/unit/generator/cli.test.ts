import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { generateCommand } from '../../../src/cli/generate.js';
import { checkCommand } from '../../../src/cli/check.js';
import { UsageError } from '../../../src/cli/usage.js';
import { loadConfig } from '../../../src/config/load.js';
import { FIXTURES } from './seeds.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'ocimirror-cli-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });
afterEach(() => { vi.restoreAllMocks(); });

/** Runs a command, returning its exit code and what it printed. */
async function run(command: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { stdout += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { stderr += String(chunk); return true; });
  const code = await command(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

const seed = (name: string) => join(FIXTURES, `${name}.yaml`);

describe('ocimirror generate', () => {
  it('k3s --from writes the node file and a proxy configuration that loads, and says which is which', async () => {
    const node = join(dir, 'registries.yaml');
    const proxy = join(dir, 'proxy.yaml');
    const r = await run(generateCommand, ['k3s', '--from', seed('seed-http'), '--url', 'http://mirror.lan:5000', '-o', node, '--proxy-config-out', proxy]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`PROXY configuration (run \`ocimirror serve --config ${proxy}\``);
    expect(r.stderr).toContain(`NODE file (install as /etc/rancher/k3s/registries.yaml`);
    expect(parse(readFileSync(node, 'utf8')).mirrors['172.31.19.227:5000'].endpoint).toEqual(['http://mirror.lan:5000']);
    expect(readFileSync(node, 'utf8')).toContain(`the proxy configuration ${proxy}`);
    expect(loadConfig(proxy).mirrors['172.31.19.227:5000']?.endpoint).toEqual(['http://172.31.19.227:5000']);
    expect(statSync(proxy).mode & 0o777).toBe(0o600);
  });

  it('k3s --config prints to stdout, using --url over server.url', async () => {
    const r = await run(generateCommand, ['k3s', '--config', join(import.meta.dirname, '../../../config/ocimirror.yaml'), '--url', 'https://m.lan:5443', '--ca-file', '/etc/ca.pem']);
    expect(r.code).toBe(0);
    expect(parse(r.stdout)).toEqual({ mirrors: { 'docker.io': { endpoint: ['https://m.lan:5443'] } }, configs: { 'm.lan:5443': { tls: { ca_file: '/etc/ca.pem' } } } });
  });

  it('hosts-toml --out writes one directory per registry', async () => {
    const out = join(dir, 'certs.d');
    const r = await run(generateCommand, ['hosts-toml', '--from', seed('seed-mirrors'), '--url', 'http://127.0.0.1:5000', '--out', out, '--no-fallback']);
    expect(r.code).toBe(0);
    for (const d of ['docker.io', '172.31.6.200:5000', 'rancher.ksd.top:5000']) expect(existsSync(join(out, d, 'hosts.toml'))).toBe(true);
  });

  it('daemon-json prints JSON on stdout and the notes on stderr; a generator refusal exits 2', async () => {
    const ok = await run(generateCommand, ['daemon-json', '--from', seed('seed-accelerators'), '--url', 'http://mirror.lan:5000']);
    expect(JSON.parse(ok.stdout)['registry-mirrors']).toEqual(['http://mirror.lan:5000']);
    expect(ok.stderr).toContain('docker.io images only');
    const refused = await run(generateCommand, ['daemon-json', '--from', seed('seed-http'), '--url', 'http://mirror.lan:5000']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('does not mirror docker.io');
  });

  it('rejects bad usage with a UsageError', async () => {
    const bad = [
      ['nonsense'],
      ['k3s'],
      ['k3s', '--config', 'a.yaml', '--from', 'b.yaml'],
      ['k3s', '--from', seed('seed-http')],
      ['k3s', '--from', seed('seed-http'), '--url', 'http://m:5000'],
      ['k3s', '--from', seed('seed-http'), '--url', 'http://m:5000', '--proxy-config-out', seed('seed-http')],
      ['k3s', '--from', seed('seed-http'), '--url', 'http://m:5000', '--k3s', 'v1.20', '--proxy-config-out', join(dir, 'p.yaml')],
      ['hosts-toml', '--from', seed('seed-http'), '--url', 'http://m:5000'],
      ['daemon-json', '--from', seed('seed-http'), '--url', 'http://m:5000', '--fallback'],
    ];
    for (const argv of bad) await expect(generateCommand(argv), argv.join(' ')).rejects.toBeInstanceOf(UsageError);
  });
});

describe('ocimirror check', () => {
  it('exits 2 with errors, 1 with warnings only, 0 when only info remains', async () => {
    expect((await run(checkCommand, [join(FIXTURES, 'mistakes.yaml')])).code).toBe(2);
    const warnOnly = join(dir, 'warn.yaml');
    writeFileSync(warnOnly, 'mirrors:\n  docker.io:\n    endpoint: ["https://mirror.lan/"]\n');
    expect((await run(checkCommand, [warnOnly])).code).toBe(1);
    expect((await run(checkCommand, [join(FIXTURES, 'seed-accelerators.yaml')])).code).toBe(0);
    const generated = await run(checkCommand, [join(FIXTURES, 'golden', 'seed-mirrors', 'k3s.yaml')]);
    expect(generated.code).toBe(0);
    expect(generated.stderr).toContain('no problems found');
  });

  it('--no-files skips certificate files that live on the node, --format json prints one document', async () => {
    expect((await run(checkCommand, [seed('seed-harbor-tls')])).code).toBe(2);
    const r = await run(checkCommand, [seed('seed-harbor-tls'), '--no-files', '--format', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings.map((f: { code: string }) => f.code)).toEqual(['password-plaintext']);
  });

  it('prints FILE:LINE:COL findings and checks --config files', async () => {
    const r = await run(checkCommand, ['--config', join(FIXTURES, 'bad-ocimirror.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${join(FIXTURES, 'bad-ocimirror.yaml')}:13:12: error: configs."registry-1.docker.io".auth.token is not read by K3s`);
  });

  it('rejects bad usage', async () => {
    await expect(checkCommand([])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCommand(['a.yaml', '--config', 'b.yaml'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCommand(['a.yaml', '--format', 'xml'])).rejects.toBeInstanceOf(UsageError);
  });
});

describe('command and kind names are looked up in Maps (issue 8 rule 2)', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('"%s" is neither a command nor a generate kind', async (name) => {
    const { main } = await import('../../../src/cli/main.js');
    const r = await run(main, [name]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unknown command ${JSON.stringify(name)}`);
    await expect(generateCommand([name, '--config', seed('seed-http')])).rejects.toThrow(UsageError);
  });
});
