// `ocimirror check --config FILE`: the proxy's own configuration, with its mirrors/configs checked exactly like a
// registries.yaml and every other key validated by the same loader `serve` uses.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, isScalar, type Node, type Pair } from 'yaml';
import { parseConfig } from '../../config/load.js';
import { ConfigError } from '../../config/validate.js';
import type { Finding } from './findings.js';
import { checkPolicies } from './policies.js';
import { checkRegistriesText, checkRegistryNodes, parseForCheck, type FileCheckOptions } from './registries-file.js';

export function checkOcimirrorConfigText(file: string, text: string, opts: FileCheckOptions): Finding[] {
  const { sink, root, ok } = parseForCheck(file, text);
  if (!ok) return sink.findings;
  if (!isMap(root)) {
    sink.add(root, 'error', 'wrong-type', 'an ocimirror configuration must be a mapping', 'start from config/ocimirror.yaml');
    return sink.findings;
  }
  const pairs = new Map((root.items as Pair<Node, Node | null>[]).map((p) => [isScalar(p.key) ? String(p.key.value) : '', p]));
  const registries = pairs.get('registries');
  const extra: Finding[] = [];
  if (registries) {
    if (pairs.has('mirrors') || pairs.has('configs')) {
      sink.add(registries.key, 'error', 'registries-and-mirrors', 'registries: and mirrors:/configs: are both set; the proxy refuses to start',
        'keep either registries: (a K3s registries.yaml path) or mirrors:/configs:');
    }
    const path = isScalar(registries.value) ? String(registries.value.value) : '';
    let registriesText: string | undefined;
    try { registriesText = readFileSync(resolve(path), 'utf8'); } catch (e) {
      sink.add(registries.value ?? registries.key, 'error', 'registries-missing', `registries file "${path}" cannot be read (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
        'point registries: at the K3s registries.yaml the proxy should serve');
    }
    if (registriesText !== undefined) extra.push(...checkRegistriesText(path, registriesText, opts));
  } else if (!pairs.has('mirrors')) {
    sink.add(root, 'warning', 'no-mirrors', 'no mirrors: and no registries: the proxy serves no registry', 'add mirrors: (see config/ocimirror.yaml)');
  }
  checkRegistryNodes(sink, pairs.get('mirrors')?.value, pairs.get('configs')?.value, opts);
  // Blanking the registries: pair keeps every other line:col while the loader skips reading that file again.
  const rest = registries ? blank(text, registries.key.range?.[0] ?? 0, registries.value?.range?.[1] ?? registries.key.range?.[1] ?? 0) : text;
  try {
    const config = parseConfig(file, rest);
    // Mirrors read from a registries: file were blanked above, so only mirrors: here can say which registries exist.
    sink.findings.push(...checkPolicies(config, { mirrorsKnown: !registries }));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const problem of e.problems) {
      const f = loaderFinding(file, problem, opts);
      if (f) sink.findings.push(f);
    }
  }
  return [...sink.findings, ...extra];
}

function blank(text: string, start: number, end: number): string {
  return text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, ' ') + text.slice(end);
}

/** A loader message `file:line:col: path: message` as a finding; mirrors/configs are already checked above. */
function loaderFinding(file: string, problem: string, opts: FileCheckOptions): Finding | undefined {
  const m = /^(\d+):(\d+): (.*)$/s.exec(problem.startsWith(`${file}:`) ? problem.slice(file.length + 1) : '');
  if (!m) return { file, line: 1, col: 1, severity: 'error', code: 'config-invalid', message: problem, fix: 'see config/ocimirror.yaml' };
  const message = m[3] as string;
  if (/^(mirrors|configs)\b/.test(message)) return undefined;
  if (!opts.checkFiles && message.includes('expected a readable file')) return undefined;
  // "expected X, got Y" already names the fix: write X.
  const expected = /expected (.*?)(?:, got .*)?$/s.exec(message)?.[1];
  return {
    file, line: Number(m[1]), col: Number(m[2]), severity: 'error', code: 'config-invalid', message,
    fix: expected ? `write ${expected}` : 'see the comments in config/ocimirror.yaml',
  };
}
