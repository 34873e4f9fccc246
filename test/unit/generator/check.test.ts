import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRegistriesText } from '../../../src/generator/check/registries-file.js';
import { checkOcimirrorConfigText } from '../../../src/generator/check/ocimirror-config.js';
import { exitCode, formatJson, formatText, type Finding } from '../../../src/generator/check/findings.js';
import { FIXTURES, SEEDS } from './seeds.js';

const check = (name: string, checkFiles = true): Finding[] =>
  checkRegistriesText(name, readFileSync(join(FIXTURES, name), 'utf8'), { checkFiles, base: FIXTURES });
const brief = (fs: Finding[]) => fs.map((f) => `${f.line}:${f.col} ${f.severity} ${f.code}`).sort((a, b) => parseFloat(a) - parseFloat(b) || a.localeCompare(b));

describe('check: each listed mistake, at its line and column', () => {
  it('mistakes.yaml', () => {
    expect(brief(check('mistakes.yaml'))).toEqual([
      '5:9 warning endpoint-trailing-slash', // "https://mirror.example.com/": v1.21 uses "/" verbatim
      '6:9 warning endpoint-duplicate',
      '7:9 warning endpoint-no-scheme', // K3s would use https
      '8:9 warning endpoint-trailing-slash',
      '11:7 warning rewrite-overlap',
      '12:7 error rewrite-invalid', // lookahead is not RE2
      '14:5 error unknown-key', // endpoints:
      '20:3 warning config-key-is-mirror-name',
      '22:7 error auth-token',
      '23:3 warning config-host-unmatched', // keyed with a scheme
      '26:17 info password-plaintext',
      '29:7 warning skip-verify-http',
      '30:7 error unknown-key', // ca: instead of ca_file:
      '33:16 error tls-file-missing',
      '34:18 error tls-file-invalid',
      '40:17 error tls-key-mismatch',
    ]);
  });

  it('mistakes-more.yaml', () => {
    expect(brief(check('mistakes-more.yaml'))).toEqual([
      '2:1 error unknown-key',
      '5:3 error registry-name-invalid',
      '8:15 error wrong-type',
      '11:9 error endpoint-invalid',
      '12:9 info endpoint-custom-path',
      '16:3 info config-wildcard',
      '18:29 error wrong-type',
      '21:7 warning auth-incomplete',
      '22:5 warning tls-pair-incomplete',
      '23:18 error tls-file-missing',
      '24:3 info config-host-unmatched', // a registry pulled directly: fine
      '27:3 warning config-host-unmatched', // the endpoint is mirror.lan:5443
    ]);
  });

  it('an unquoted "*" and a duplicate key, which stop K3s from reading the file', () => {
    expect(brief(check('mistakes-wildcard.yaml'))).toContain('2:3 error wildcard-unquoted');
    expect(brief(check('mistakes-duplicate.yaml'))).toEqual(['4:3 error duplicate-key']);
  });

  it('names the fix and suggests the key that was meant', () => {
    const f = check('mistakes.yaml');
    expect(f.find((x) => x.code === 'auth-token')?.fix).toMatch(/identity_token/);
    expect(f.find((x) => x.line === 14)?.fix).toMatch(/did you mean "endpoint"/);
    expect(f.find((x) => x.line === 30)?.fix).toMatch(/did you mean "ca_file"/);
    expect(f.find((x) => x.code === 'config-key-is-mirror-name')?.fix).toBe('key this entry by "registry.internal:5000"');
    expect(f.find((x) => x.line === 5)?.fix).toBe('write "https://mirror.example.com"');
  });
});

describe('check: the seed tutorial\'s correct examples', () => {
  for (const seed of SEEDS) {
    it(`${seed}.yaml: no errors or warnings, only plain-text password notes`, () => {
      const findings = check(`${seed}.yaml`, false);
      expect(findings.filter((f) => f.code !== 'password-plaintext')).toEqual([]);
      expect(exitCode(findings)).toBe(0);
    });
  }

  it('on a machine without the named certificates, file checks report them (run check on the node, or --no-files)', () => {
    expect(brief(check('seed-full.yaml')).filter((b) => b.includes('tls-file'))).toEqual([
      '27:18 error tls-file-missing', '28:18 error tls-file-missing', '29:18 error tls-file-missing',
    ]);
  });
});

describe('check output', () => {
  const findings = check('mistakes.yaml');

  it('prints FILE:LINE:COL: severity: message (fix: ...) lines', () => {
    const first = formatText(findings).split('\n')[0];
    expect(first).toBe('mistakes.yaml:5:9: warning: endpoint "https://mirror.example.com/" ends in "/": K3s v1.21 (containerd 1.4) uses "/" verbatim as the API root, so requests miss /v2 (fix: write "https://mirror.example.com")');
  });

  it('prints JSON for CI with a summary and the exit code', () => {
    const doc = JSON.parse(formatJson(findings));
    expect(doc.summary).toEqual({ errors: 7, warnings: 8, infos: 1 });
    expect(doc.exitCode).toBe(2);
    expect(Object.keys(doc.findings[0])).toEqual(['file', 'line', 'col', 'severity', 'code', 'message', 'fix']);
  });

  it('exits 0 clean (info only), 1 on warnings, 2 on errors', () => {
    const at = (severity: Finding['severity']): Finding => ({ file: 'f', line: 1, col: 1, severity, code: 'c', message: 'm', fix: 'x' });
    expect(exitCode([])).toBe(0);
    expect(exitCode([at('info')])).toBe(0);
    expect(exitCode([at('info'), at('warning')])).toBe(1);
    expect(exitCode([at('warning'), at('error')])).toBe(2);
  });
});

describe('check --config: ocimirror\'s own configuration', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'ocimirror-check-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('the shipped config/ocimirror.yaml is clean', () => {
    const file = join(import.meta.dirname, '../../../config/ocimirror.yaml');
    expect(checkOcimirrorConfigText(file, readFileSync(file, 'utf8'), { checkFiles: true, base: dir })).toEqual([]);
  });

  it('reports the loader\'s problems and the mirrors/configs findings with their positions', () => {
    const file = join(FIXTURES, 'bad-ocimirror.yaml');
    const findings = checkOcimirrorConfigText(file, readFileSync(file, 'utf8'), { checkFiles: true, base: dir });
    expect(brief(findings)).toEqual([
      '4:8 error config-invalid',
      '6:12 error config-invalid',
      '7:3 error config-invalid',
      '10:16 warning endpoint-trailing-slash',
      '13:12 error auth-token',
    ]);
    expect(findings.find((f) => f.line === 6)?.fix).toBe('write a size like "20GiB" or "500MB"');
  });

  it('checks the registries.yaml a registries: key names, in that file\'s own positions', () => {
    const file = join(dir, 'with-registries.yaml');
    writeFileSync(file, `server:\n  url: "http://mirror.lan:5000"\nregistries: ${JSON.stringify(join(FIXTURES, 'mistakes-duplicate.yaml'))}\n`);
    const findings = checkOcimirrorConfigText(file, readFileSync(file, 'utf8'), { checkFiles: true, base: dir });
    expect(findings.map((f) => [f.file, f.line, f.col, f.code])).toEqual([[join(FIXTURES, 'mistakes-duplicate.yaml'), 4, 3, 'duplicate-key']]);
  });

  it('reports a registries: file that cannot be read, and no mirrors at all', () => {
    const file = join(dir, 'missing.yaml');
    writeFileSync(file, 'registries: /nonexistent/registries.yaml\n');
    expect(brief(checkOcimirrorConfigText(file, readFileSync(file, 'utf8'), { checkFiles: true, base: dir }))).toEqual(['1:13 error registries-missing']);
    writeFileSync(file, 'server:\n  url: "http://mirror.lan:5000"\n');
    expect(brief(checkOcimirrorConfigText(file, readFileSync(file, 'utf8'), { checkFiles: true, base: dir }))).toEqual(['1:1 warning no-mirrors']);
  });
});
