// policies: and allowRepositories: — refused with file:line:col when malformed; the first matching rule wins,
// unset fields come from cache.*, and deny / allowRepositories name what refused a repository.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { globToRegExp, Policies, policiesOf } from '../../../src/config/policies.js';
import { problems } from './problems.js';

const EXAMPLE = `
cache:
  tagTtl: 1m
policies:
  - match: { registry: docker.io, repository: "library/*" }
    tagTtl: 10m
    immutableTags: '^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$'
    staleIfError: 7d
    staleIfNotFound: 24h
    negativeTtl: 30s
  - match: { registry: "*", repository: "internal/*" }
    deny: true
  - match: { registry: ghcr.io }
    tagTtl: 5m
`;

describe('policies: loading', () => {
  it('reads the example of issue 13, with days as a duration unit', () => {
    const c = parseConfig('c.yaml', EXAMPLE);
    expect(c.policies).toEqual([
      {
        match: { registry: 'docker.io', repository: 'library/*', at: 'c.yaml:5:5' },
        tagTtlMs: 600_000, immutableTags: '^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$',
        staleIfErrorMs: 7 * 86_400_000, staleIfNotFoundMs: 86_400_000, negativeTtlMs: 30_000,
      },
      { match: { registry: '*', repository: 'internal/*', at: 'c.yaml:11:5' }, deny: true },
      { match: { registry: 'ghcr.io', repository: '*', at: 'c.yaml:13:5' }, tagTtlMs: 300_000 },
    ]);
    expect(c.cache).toMatchObject({ staleIfErrorMs: 7 * 86_400_000, staleIfNotFoundMs: 0, negativeTtlMs: 0 });
    expect(c.upstream.rateLimitThreshold).toEqual({ percent: 10 });
    expect(c.allowRepositories).toEqual([]);
  });

  it('every mistake with file:line:col, the key path and what was expected', () => {
    expect(problems('policies:\n  - match: { registry: docker.io }\n    tagTTL: 5m\n')).toEqual([
      'c.yaml:3:5: policies[0].tagTTL: unknown key; expected one of match, tagTtl, immutableTags, staleIfError, staleIfNotFound, negativeTtl, deny',
    ]);
    expect(problems('policies:\n  - match: { registry: docker.io, repo: x }\n')).toEqual([
      'c.yaml:2:35: policies[0].match.repo: unknown key; expected one of registry, repository',
    ]);
    expect(problems('policies:\n  - match: { repository: "Library/*" }\n')).toEqual([
      'c.yaml:2:26: policies[0].match.repository: expected a repository glob like "library/*" (lowercase), got "Library/*"',
    ]);
    expect(problems("policies:\n  - immutableTags: '(?=x)'\n    staleIfError: 1 week\n    deny: yes\n")).toEqual([
      'c.yaml:2:20: policies[0].immutableTags: expected an RE2 regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=`',
      'c.yaml:3:19: policies[0].staleIfError: expected a duration like "5s", "250ms" or "1m30s", got "1 week"',
      'c.yaml:4:11: policies[0].deny: expected true or false, got the string "yes"',
    ]);
    expect(problems('policies:\n  match: {}\n')).toEqual(['c.yaml:2:3: policies: expected a list of rules (- match: {...})']);
    expect(problems('allowRepositories: ["library/nginx", "docker.io/library/*"]\n')).toEqual([
      'c.yaml:1:21: allowRepositories[0]: expected REGISTRY/REPOSITORY globs like "docker.io/library/*" or "*/team/*", got "library/nginx"',
    ]);
    expect(problems('upstream:\n  rateLimitThreshold: "ten"\ncache:\n  immutableTags: "[a"\n')).toEqual([
      'c.yaml:2:23: upstream.rateLimitThreshold: expected a percentage of the limit like "10%" or a number of requests like 20, got "ten"',
      'c.yaml:4:18: cache.immutableTags: expected an RE2 regular expression: error parsing regexp: missing closing ]: `[a`',
    ]);
  });

  it('rateLimitThreshold: a percentage or a count', () => {
    expect(parseConfig('c.yaml', 'upstream:\n  rateLimitThreshold: "25%"\n').upstream.rateLimitThreshold).toEqual({ percent: 25 });
    expect(parseConfig('c.yaml', 'upstream:\n  rateLimitThreshold: 20\n').upstream.rateLimitThreshold).toEqual({ count: 20 });
  });
});

describe('policies: matching', () => {
  const p = policiesOf(parseConfig('c.yaml', EXAMPLE));

  it('the first matching rule wins; unset fields come from cache.*', () => {
    const hub = p.policyFor('docker.io', 'library/nginx');
    expect(hub).toMatchObject({ tagTtlMs: 600_000, staleIfErrorMs: 7 * 86_400_000, staleIfNotFoundMs: 86_400_000, negativeTtlMs: 30_000, rule: 'policies[0] (c.yaml:5:5)' });
    expect(p.policyFor('ghcr.io', 'org/app')).toMatchObject({ tagTtlMs: 300_000, staleIfErrorMs: 7 * 86_400_000, staleIfNotFoundMs: 0, negativeTtlMs: 0 });
    const none = p.policyFor('quay.io', 'org/app');
    expect(none).toMatchObject({ tagTtlMs: 60_000 });
    expect(none.rule).toBeUndefined();
  });

  it('immutableTags: version tags only', () => {
    const hub = p.policyFor('docker.io', 'library/nginx');
    expect(['1.25.3', 'v1.2.3', '1.25.3-alpine'].map((t) => hub.isImmutable(t))).toEqual([true, true, true]);
    expect(['latest', '1.25', 'stable-1.2.3x!'].map((t) => hub.isImmutable(t))).toEqual([false, false, false]);
    expect(p.policyFor('ghcr.io', 'o/a').isImmutable('1.2.3')).toBe(false);
  });

  it('deny names the rule; "*" spans slashes, so nested repositories are denied too', () => {
    expect(p.access('quay.io', 'internal/team/app')).toEqual({ allowed: false, reason: 'quay.io/internal/team/app is denied by policies[1] (c.yaml:11:5)' });
    expect(p.access('docker.io', 'library/internal')).toEqual({ allowed: true });
    expect(p.access('docker.io', 'internal/x').allowed).toBe(false); // registry "*" covers Docker Hub too
    // A client's 403 names the file and line, not the server's directories.
    const fromEtc = policiesOf(parseConfig('/etc/ocimirror/o.yaml', 'policies:\n  - deny: true\n'));
    expect(fromEtc.access('docker.io', 'library/x')).toEqual({ allowed: false, reason: 'docker.io/library/x is denied by policies[0] (o.yaml:2:5)' });
  });

  it('allowRepositories: only matching repositories; Docker Hub short names mean library/', () => {
    const allow = policiesOf(parseConfig('c.yaml', 'allowRepositories: ["docker.io/nginx", "*.example.com/team/*"]\n'));
    expect(allow.access('docker.io', 'library/nginx').allowed).toBe(true);
    expect(allow.access('harbor.example.com', 'team/a/b').allowed).toBe(true);
    expect(allow.access('docker.io', 'library/redis')).toEqual({ allowed: false, reason: 'docker.io/library/redis matches no allowRepositories entry' });
    expect(allow.access('example.com', 'team/a').allowed).toBe(false);
  });

  it('globs: * any run (slashes too), ? one character, everything else literal', () => {
    expect(globToRegExp('a.b/*').test('a.b/c/d')).toBe(true);
    expect(globToRegExp('a.b/*').test('aXb/c')).toBe(false);
    expect(globToRegExp('v?').test('v1')).toBe(true);
    expect(globToRegExp('v?').test('v12')).toBe(false);
    expect(globToRegExp('[::1]:5000').test('[::1]:5000')).toBe(true);
  });

  it('policiesOf compiles once per configuration', () => {
    const c = parseConfig('c.yaml', EXAMPLE);
    expect(policiesOf(c)).toBe(policiesOf(c));
    expect(new Policies(c)).not.toBe(policiesOf(c));
  });
});
