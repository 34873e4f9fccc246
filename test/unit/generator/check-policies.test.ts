// `ocimirror check --config` on policies: malformed ones are errors at their line:col (the loader's messages),
// and rules that load but cannot work are warnings: shadowed, for an unserved registry, deny with settings,
// immutableTags that would freeze latest.
import { describe, expect, it } from 'vitest';
import { checkOcimirrorConfigText } from '../../../src/generator/check/ocimirror-config.js';
import type { Finding } from '../../../src/generator/check/findings.js';

const check = (text: string): Finding[] => checkOcimirrorConfigText('o.yaml', text, { checkFiles: false, base: process.cwd() });
const brief = (fs: Finding[]) => fs.map((f) => `${f.line}:${f.col} ${f.severity} ${f.code}`);

describe('check --config: policies', () => {
  it('a clean policies section has no findings', () => {
    expect(check(`mirrors:
  docker.io: { endpoint: ["https://hub.example.com"] }
policies:
  - match: { registry: docker.io, repository: "library/*" }
    immutableTags: '^[0-9]+\\.[0-9]+\\.[0-9]+$'
  - match: { repository: "internal/*" }
    deny: true
allowRepositories: ["docker.io/library/*"]
`)).toEqual([]);
  });

  it('malformed: errors with line:col and the fix', () => {
    const findings = check(`mirrors:
  docker.io: { endpoint: ["https://hub.example.com"] }
policies:
  - match: { registry: docker.io }
    staleIfError: forever
    tagttl: 5m
`);
    expect(brief(findings)).toEqual(['5:19 error config-invalid', '6:5 error config-invalid']);
    expect(findings[0]?.message).toBe('policies[0].staleIfError: expected a duration like "5s", "250ms" or "1m30s", got "forever"');
    expect(findings[0]?.fix).toBe('write a duration like "5s", "250ms" or "1m30s"');
  });

  it('loads, but cannot work: warnings at the rule', () => {
    const findings = check(`mirrors:
  docker.io: { endpoint: ["https://hub.example.com"] }
policies:
  - match: { registry: docker.io }
    tagTtl: 5m
  - match: { registry: docker.io, repository: "library/nginx" }
    tagTtl: 1h
  - match: { registry: ghcr.io }
    deny: true
    negativeTtl: 30s
  - match: { registry: "*", repository: "team/*" }
    immutableTags: '[0-9]+|latest'
allowRepositories: ["quay.io/*"]
`);
    expect(brief(findings)).toEqual([
      '6:5 warning policy-unreachable',
      '8:5 warning policy-no-registry',
      '8:5 warning policy-deny-settings',
      '11:5 warning immutable-latest',
      '13:21 warning allow-no-registry',
    ]);
    expect(findings[0]?.message).toBe('policies[1] never applies: policies[0] matches every repository it does (the first match wins)');
    expect(findings[2]?.message).toBe('policies[2] denies, so its negativeTtl has no effect');
  });

  it('with a "*" mirror every registry glob can apply', () => {
    expect(check(`mirrors:
  "*": { endpoint: [] }
policies:
  - match: { registry: ghcr.io }
    tagTtl: 5m
`)).toEqual([]);
  });
});
