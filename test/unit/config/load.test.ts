// Configuration mistakes are refused at start-up with file:line:col, the key path and "expected X, got Y".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { problems } from './problems.js';

const dir = mkdtempSync(join(tmpdir(), 'ocimirror-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config errors carry file:line:col, the key path and what was expected', () => {
  it('unknown key (nested)', () => {
    expect(problems('server:\n  listen: "127.0.0.1:5000"\n  lisen: x\n')).toEqual([
      'c.yaml:3:3: server.lisen: unknown key; expected one of listen, url, tls, auth, headersTimeout, keepAliveTimeout, idleTimeout, maxConnections, shutdownGrace',
    ]);
  });

  it('unknown key (top level)', () => {
    expect(problems('mirror:\n  docker.io: {}\n')).toEqual([
      'c.yaml:1:1: mirror: unknown key; expected one of server, cache, upstream, defaultRegistry, log, registries, mirrors, configs, cluster, policies, allowRepositories',
    ]);
  });

  it('unknown key under a mirror and under configs auth', () => {
    expect(problems('mirrors:\n  docker.io:\n    endpoints: ["https://x.example.com"]\n')).toEqual([
      'c.yaml:3:5: mirrors."docker.io".endpoints: unknown key; expected one of endpoint, rewrite',
    ]);
    expect(problems('configs:\n  r.example.com:\n    auth:\n      token: abc\n')).toEqual([
      'c.yaml:4:7: configs."r.example.com".auth.token: unknown key; expected one of username, password, auth, identity_token',
    ]);
  });

  it('wrong types', () => {
    expect(problems('upstream:\n  failureStatus: "503"\n')).toEqual(['c.yaml:2:18: upstream.failureStatus: expected an integer, got the string "503"']);
    expect(problems('upstream:\n  appendDefaultEndpoint: "yes"\n')).toEqual(['c.yaml:2:26: upstream.appendDefaultEndpoint: expected true or false, got the string "yes"']);
    expect(problems('mirrors:\n  docker.io:\n    endpoint: "https://x"\n')).toEqual(['c.yaml:3:15: mirrors."docker.io".endpoint: expected a list of strings, got the string "https://x"']);
    expect(problems('server: 5000\n')).toEqual(['c.yaml:1:9: server: expected a mapping, got number 5000']);
  });

  it('values out of range', () => {
    expect(problems('upstream:\n  failureStatus: 500\n')).toEqual(['c.yaml:2:18: upstream.failureStatus: expected 503, 504 or 404, got 500']);
    expect(problems('server:\n  listen: "0.0.0.0:99999"\n')).toEqual(['c.yaml:2:11: server.listen: expected HOST:PORT like "0.0.0.0:5000", got "0.0.0.0:99999"']);
  });

  it('bad durations', () => {
    expect(problems('upstream:\n  connectTimeout: 5 seconds\n')).toEqual([
      'c.yaml:2:19: upstream.connectTimeout: expected a duration like "5s", "250ms" or "1m30s", got "5 seconds"',
    ]);
    expect(problems('upstream:\n  health:\n    cooldown: "-1s"\n')).toEqual([
      'c.yaml:3:15: upstream.health.cooldown: expected a duration like "5s", "250ms" or "1m30s", got "-1s"',
    ]);
  });

  it('bad sizes', () => {
    expect(problems('cache:\n  maxSize: "20 GB!"\n')).toEqual(['c.yaml:2:12: cache.maxSize: expected a size like "20GiB" or "500MB", got "20 GB!"']);
    expect(problems('cache:\n  maxSize: 20XB\n')).toEqual(['c.yaml:2:12: cache.maxSize: expected a size like "20GiB" or "500MB", got "20XB"']);
  });

  it('unreadable cert files', () => {
    const missing = join(dir, 'missing-ca.pem');
    expect(problems(`configs:\n  "r.example.com":\n    tls:\n      ca_file: ${missing}\n`)).toEqual([
      `c.yaml:4:16: configs."r.example.com".tls.ca_file: expected a readable file, got "${missing}" (ENOENT)`,
    ]);
  });

  it('a client certificate without its key', () => {
    const cert = join(dir, 'client.pem');
    writeFileSync(cert, 'x');
    expect(problems(`configs:\n  "r.example.com":\n    tls:\n      cert_file: ${cert}\n`)).toEqual([
      'c.yaml:4:7: configs."r.example.com".tls: expected cert_file and key_file together (a client certificate needs both)',
    ]);
  });

  it('credentials inside an endpoint URL', () => {
    expect(problems('mirrors:\n  docker.io:\n    endpoint: ["https://u:p@x.example.com"]\n')).toEqual([
      'c.yaml:3:16: mirrors."docker.io".endpoint[0]: credentials do not belong in an endpoint URL; put them under configs.<host>.auth',
    ]);
  });

  it('every problem at once, not just the first', () => {
    const found = problems('upstream:\n  connectTimeout: soon\n  failureStatus: 200\ncache:\n  maxSize: lots\n');
    expect(found).toHaveLength(3);
    expect(found.map((p) => p.split(': ')[0]).sort()).toEqual(['c.yaml:2:19', 'c.yaml:3:18', 'c.yaml:5:12']);
  });

  it('invalid YAML', () => {
    expect(problems('server:\n  listen: [\n')[0]).toMatch(/^c\.yaml:\d+:\d+: not valid YAML: /);
  });

  it('an unreadable config file', () => {
    expect(() => loadConfig(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml: cannot read the configuration: ENOENT/);
  });

  it('a config file too large to be one is refused before it is read (issue 8 rule 1)', () => {
    const file = join(dir, 'huge.yaml');
    writeFileSync(file, `# ${'x'.repeat(4 * 1024 * 1024)}\n`);
    expect(() => loadConfig(file)).toThrow(/huge\.yaml: expected the configuration of at most 4194304 bytes, got 41943\d\d/);
  });
});

describe('a valid configuration', () => {
  it('parses durations and sizes, applies defaults and is frozen', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, [
      'upstream:', '  connectTimeout: 1m30s', '  responseTimeout: 250ms', '  failureStatus: 404',
      'cache:', '  maxSize: 512MiB', '  tagTtl: "0s"',
      'mirrors:', '  docker.io:', '    endpoint: ["127.0.0.1:5001", "https://mirror.example.com/v2/cache"]',
      'configs:', '  "127.0.0.1:5001":', '    auth: {username: u, password: p}',
    ].join('\n'));
    const c = loadConfig(file);
    expect(c.upstream.connectTimeoutMs).toBe(90_000);
    expect(c.upstream.responseTimeoutMs).toBe(250);
    expect(c.upstream.failureStatus).toBe(404);
    expect(c.cache.maxSize).toBe(512 * 2 ** 20);
    expect(c.cache.tagTtlMs).toBe(0);
    expect(c.upstream.health).toEqual({ failureThreshold: 1, cooldownMs: 10_000, maxCooldownMs: 300_000, probeIntervalMs: 5_000 });
    expect(c.defaultRegistry).toBe('docker.io');
    expect(c.mirrors['docker.io']?.endpoint).toEqual(['127.0.0.1:5001', 'https://mirror.example.com/v2/cache']);
    expect(c.configs['127.0.0.1:5001']?.auth).toEqual({ username: 'u', password: 'p' });
    expect(Object.isFrozen(c.upstream)).toBe(true);
  });
});
