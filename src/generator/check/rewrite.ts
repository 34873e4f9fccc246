// Findings for `rewrite:` rules: K3s compiles them with Go's RE2 and applies them in map order, which Go
// randomises, so two rules that can match the same repository give a different answer from pull to pull.
import { isMap, isScalar, type Node, type Pair } from 'yaml';
import { RE2JS } from 're2js';
import { re2Problem } from '../../config/registries.js';
import type { FindingSink } from './findings.js';

export function checkRewrites(sink: FindingSink, registry: string, node: Node | null | undefined): void {
  if (node == null || (isScalar(node) && node.value == null)) return;
  if (!isMap(node)) {
    sink.add(node, 'error', 'wrong-type', `mirrors."${registry}".rewrite must be a mapping of pattern → replacement`, 'write rewrite: {"^library/(.*)": "mirror/$1"}');
    return;
  }
  const valid: { pattern: string; re: RE2JS; key: Node }[] = [];
  for (const pair of node.items as Pair<Node, Node | null>[]) {
    const pattern = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!isScalar(pair.value) || typeof pair.value.value !== 'string') {
      sink.add(pair.value ?? pair.key, 'error', 'wrong-type', `the replacement for "${pattern}" must be a string`, 'quote the replacement, e.g. "mirror/$1"');
    }
    const problem = re2Problem(pattern);
    if (problem) {
      sink.add(pair.key, 'error', 'rewrite-invalid', `rewrite pattern "${pattern}" is not a valid RE2 regular expression: ${problem}`,
        'use RE2 syntax (no lookahead, lookbehind or backreferences)');
      continue;
    }
    valid.push({ pattern, re: RE2JS.compile(pattern), key: pair.key });
  }
  for (let j = 1; j < valid.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = valid[i] as (typeof valid)[number];
      const b = valid[j] as (typeof valid)[number];
      const example = overlapExample(a.pattern, a.re, b.pattern, b.re);
      if (example === undefined) continue;
      sink.add(b.key, 'warning', 'rewrite-overlap',
        `rewrite patterns "${a.pattern}" (line ${sink.lineOf(a.key)}) and "${b.pattern}" both match "${example}"; K3s applies rules in random order`,
        'narrow the patterns so that no repository matches more than one');
      break;
    }
  }
}

/** A repository path both patterns match (K3s matches anywhere in the path), found by probing each one's literal prefix. */
export function overlapExample(pa: string, ra: RE2JS, pb: string, rb: RE2JS): string | undefined {
  const suffixes = ['', 'a', 'a/b', 'library/a', 'x/y/z'];
  const candidates = [literalPrefix(pa), literalPrefix(pb)].flatMap((p) => suffixes.map((s) => p + s)).concat(['library/alpine', 'a', 'a/b']);
  return candidates.find((c) => c !== '' && ra.matcher(c).find() && rb.matcher(c).find());
}

/** The literal text a pattern must start with after `^` (empty when it starts with a metacharacter). */
export function literalPrefix(pattern: string): string {
  let out = '';
  for (let i = pattern.startsWith('^') ? 1 : 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\' && i + 1 < pattern.length && /[^A-Za-z0-9]/.test(pattern[i + 1] as string)) { out += pattern[++i]; continue; }
    if ('.*+?()[]{}|$\\'.includes(c)) {
      // A quantifier applies to the previous character, which is then optional.
      return '*?{'.includes(c) ? out.slice(0, -1) : out;
    }
    out += c;
  }
  return out;
}
