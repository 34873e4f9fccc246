// Walking mappings whose keys K3s knows: unknown keys are reported, because K3s drops them without a word.
import { isMap, isScalar, type Node, type Pair } from 'yaml';
import type { FindingSink } from './findings.js';

export type Fields = Map<string, Pair<Node, Node | null>>;

/** The mapping's pairs by key; reports a non-mapping and every key not in `known` (unless `skip` claims it). */
export function knownFields(sink: FindingSink, node: Node | null | undefined, where: string, known: readonly string[],
  skip: (key: string, pair: Pair<Node, Node | null>) => boolean = () => false): Fields | undefined {
  if (node == null || (isScalar(node) && node.value == null)) return new Map();
  if (!isMap(node)) {
    sink.add(node, 'error', 'wrong-type', `${where} must be a mapping; K3s cannot read this file`, `write ${where} as key: value lines`);
    return undefined;
  }
  const out: Fields = new Map();
  for (const pair of node.items as Pair<Node, Node | null>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (known.includes(key)) { out.set(key, pair); continue; }
    if (skip(key, pair)) continue;
    const near = closest(key, known);
    sink.add(pair.key, 'error', 'unknown-key', `unknown key "${key}" in ${where}: K3s ignores it silently`,
      near ? `did you mean "${near}"? (known: ${known.join(', ')})` : `use one of ${known.join(', ')}, or remove it`);
  }
  return out;
}

/** Pairs of a mapping with free keys (registry names, hosts). */
export function freeFields(sink: FindingSink, node: Node | null | undefined, where: string): Pair<Node, Node | null>[] {
  if (node == null || (isScalar(node) && node.value == null)) return [];
  if (!isMap(node)) {
    sink.add(node, 'error', 'wrong-type', `${where} must be a mapping; K3s cannot read this file`, `write ${where} as "name": {...} entries`);
    return [];
  }
  return node.items as Pair<Node, Node | null>[];
}

export function keyText(pair: Pair<Node, Node | null>): string {
  return isScalar(pair.key) ? String(pair.key.value) : '';
}

/** A string scalar's value, or undefined (reported) for anything else. */
export function stringValue(sink: FindingSink, pair: Pair<Node, Node | null>, where: string): string | undefined {
  const v = pair.value;
  if (isScalar(v) && (typeof v.value === 'string' || typeof v.value === 'number')) return String(v.value);
  sink.add(v ?? pair.key, 'error', 'wrong-type', `${where} must be a string`, 'quote the value');
  return undefined;
}

function closest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  // A shortened or extended spelling ("ca" for ca_file, "endpoints" for endpoint) is the likeliest intent.
  const affix = known.find((n) => k.length >= 2 && (n.startsWith(k) || k.startsWith(n)));
  if (affix) return affix;
  let best: string | undefined;
  let bestDistance = 3;
  for (const n of known) {
    const d = distance(k, n);
    if (d < bestDistance) { best = n; bestDistance = d; }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}
