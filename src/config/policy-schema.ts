// `policies:` and `allowRepositories:` of ocimirror's own configuration (K3s has neither): globs, durations and
// an RE2 pattern per rule, each mistake reported with file:line:col like every other key.
import { isScalar, isSeq, type Node } from 'yaml';
import { re2Problem } from './registries.js';
import type { PolicyRule, RateLimitThreshold, RepositoryPattern } from './schema.js';
import { join, type Walker } from './validate.js';

export const POLICY_KEYS = ['match', 'tagTtl', 'immutableTags', 'staleIfError', 'staleIfNotFound', 'negativeTtl', 'deny'] as const;
const MATCH_KEYS = ['registry', 'repository'] as const;

// Like the first component of an image reference, a registry has a dot, a port or a glob (or is localhost), so
// "library/nginx" is not read as registry "library".
const REGISTRY_GLOB = /^(?=.*[.:*?[]|localhost$)[a-z0-9.:\-[\]*?]+$/;
const REPOSITORY_GLOB = /^[a-z0-9._\-/*?]+$/;

export function readPolicies(w: Walker, node: Node | null | undefined): PolicyRule[] {
  if (node == null || (isScalar(node) && node.value == null)) return [];
  if (!isSeq(node)) { w.fail(node, 'policies', 'expected a list of rules (- match: {...})'); return []; }
  const rules: PolicyRule[] = [];
  node.items.forEach((item, i) => {
    const path = `policies[${i}]`;
    const f = w.fields(item as Node, path, POLICY_KEYS);
    if (!f) return;
    const matchNode = f.get('match')?.value;
    const m = w.fields(matchNode, join(path, 'match'), MATCH_KEYS);
    const registry = globAt(w, m?.get('registry')?.value, join(join(path, 'match'), 'registry'), REGISTRY_GLOB, 'a registry glob like "docker.io" or "*.example.com"');
    const repository = globAt(w, m?.get('repository')?.value, join(join(path, 'match'), 'repository'), REPOSITORY_GLOB, 'a repository glob like "library/*" (lowercase)');
    const rule: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = {
      match: pattern(registry ?? '*', repository ?? '*', w.at(item as Node)),
    };
    const duration = (key: 'tagTtl' | 'staleIfError' | 'staleIfNotFound' | 'negativeTtl') => {
      const v = f.get(key)?.value;
      return v == null ? undefined : w.duration(v, join(path, key));
    };
    const tagTtlMs = duration('tagTtl');
    const staleIfErrorMs = duration('staleIfError');
    const staleIfNotFoundMs = duration('staleIfNotFound');
    const negativeTtlMs = duration('negativeTtl');
    if (tagTtlMs !== undefined) rule.tagTtlMs = tagTtlMs;
    if (staleIfErrorMs !== undefined) rule.staleIfErrorMs = staleIfErrorMs;
    if (staleIfNotFoundMs !== undefined) rule.staleIfNotFoundMs = staleIfNotFoundMs;
    if (negativeTtlMs !== undefined) rule.negativeTtlMs = negativeTtlMs;
    const immutable = immutableTagsAt(w, f.get('immutableTags')?.value, join(path, 'immutableTags'));
    if (immutable !== undefined) rule.immutableTags = immutable;
    const denyNode = f.get('deny')?.value;
    if (denyNode != null && w.bool(denyNode, join(path, 'deny'))) rule.deny = true;
    rules.push(rule);
  });
  return rules;
}

// allowRepositories: a list of REGISTRY/REPOSITORY globs, e.g. "docker.io/library/*".
export function readAllowRepositories(w: Walker, node: Node | null | undefined): RepositoryPattern[] {
  const list = w.strList(node, 'allowRepositories') ?? [];
  const items = isSeq(node) ? node.items as Node[] : [];
  const out: RepositoryPattern[] = [];
  list.forEach((entry, i) => {
    const at = items[i];
    const path = `allowRepositories[${i}]`;
    const slash = entry.indexOf('/');
    const registry = entry.slice(0, slash);
    const repository = entry.slice(slash + 1);
    if (slash <= 0 || !REGISTRY_GLOB.test(registry) || !REPOSITORY_GLOB.test(repository)) {
      w.fail(at, path, `expected REGISTRY/REPOSITORY globs like "docker.io/library/*" or "*/team/*", got ${JSON.stringify(entry)}`);
      return;
    }
    out.push(pattern(registry, repository, w.at(at)));
  });
  return out;
}

/** `cache.immutableTags` or a rule's: an RE2 pattern, refused with the compiler's reason. */
export function immutableTagsAt(w: Walker, node: Node | null | undefined, path: string): string | undefined {
  if (node == null) return undefined;
  const s = w.str(node, path);
  if (s === undefined) return undefined;
  const problem = re2Problem(s);
  if (problem) return w.fail(node, path, `expected an RE2 regular expression: ${problem}`);
  return s;
}

/** `upstream.rateLimitThreshold`: "10%" of the limit, or a number of requests. */
export function rateLimitThresholdAt(w: Walker, node: Node | null | undefined, dflt: string): RateLimitThreshold {
  const text = node == null ? dflt : w.str(node, 'upstream.rateLimitThreshold');
  if (text === undefined) return { percent: 0 };
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^\d+$/.test(text.trim())) return { count: Number(text) };
  w.fail(node, 'upstream.rateLimitThreshold', `expected a percentage of the limit like "10%" or a number of requests like 20, got ${JSON.stringify(text)}`);
  return { percent: 0 };
}

function globAt(w: Walker, node: Node | null | undefined, path: string, shape: RegExp, expected: string): string | undefined {
  if (node == null) return undefined;
  const s = w.str(node, path);
  if (s === undefined) return undefined;
  if (!shape.test(s)) return w.fail(node, path, `expected ${expected}, got ${JSON.stringify(s)}`);
  return s;
}

/** Docker Hub names its official images "library/x"; a rule written "docker.io" + "nginx" means that. */
function pattern(registry: string, repository: string, at: string): RepositoryPattern {
  const hub = registry === 'docker.io' || registry === 'index.docker.io';
  return { registry, repository: hub && !repository.includes('/') && !repository.includes('*') ? `library/${repository}` : repository, at };
}
