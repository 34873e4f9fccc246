// What applies to one repository of one registry: the first `policies` rule that matches (its unset fields from
// `cache.*`), and whether `deny` or `allowRepositories` refuse it. The proxy, `warm` and `export` all ask here, so
// a repository is refused the same way everywhere and before anything is fetched.
import { RE2JS } from 're2js';
import type { Config, PolicyRule, RepositoryPattern } from './schema.js';

export interface EffectivePolicy {
  tagTtlMs: number;
  staleIfErrorMs: number;
  staleIfNotFoundMs: number;
  negativeTtlMs: number;
  /** True for a tag that is never revalidated once cached. */
  isImmutable(tag: string): boolean;
  /** "policies[2] (file:line:col)" when a rule matched. */
  rule?: string;
}

export type Access = { allowed: true } | { allowed: false; reason: string };

interface CompiledRule {
  rule: PolicyRule;
  name: string;
  matches(registry: string, repo: string): boolean;
  policy: EffectivePolicy;
}

export class Policies {
  private readonly rules: CompiledRule[];
  private readonly allow: { pattern: RepositoryPattern; matches(registry: string, repo: string): boolean }[];
  private readonly defaults: EffectivePolicy;

  constructor(config: Pick<Config, 'cache' | 'policies' | 'allowRepositories'>) {
    const c = config.cache;
    this.defaults = {
      tagTtlMs: c.tagTtlMs, staleIfErrorMs: c.staleIfErrorMs, staleIfNotFoundMs: c.staleIfNotFoundMs, negativeTtlMs: c.negativeTtlMs,
      isImmutable: tagMatcher(c.immutableTags),
    };
    this.rules = config.policies.map((rule, i) => {
      // Clients see this in 403 messages: the file's name and line, not the server's directory layout.
      const name = `policies[${i}] (${rule.match.at.replace(/^.*\//, '')})`;
      return {
        rule, name, matches: patternMatcher(rule.match),
        policy: {
          tagTtlMs: rule.tagTtlMs ?? c.tagTtlMs,
          staleIfErrorMs: rule.staleIfErrorMs ?? c.staleIfErrorMs,
          staleIfNotFoundMs: rule.staleIfNotFoundMs ?? c.staleIfNotFoundMs,
          negativeTtlMs: rule.negativeTtlMs ?? c.negativeTtlMs,
          isImmutable: rule.immutableTags !== undefined ? tagMatcher(rule.immutableTags) : this.defaults.isImmutable,
          rule: name,
        },
      };
    });
    this.allow = config.allowRepositories.map((pattern) => ({ pattern, matches: patternMatcher(pattern) }));
  }

  /** The cache policy for a repository (`repo` normalised, before any mirror rewrite: "library/nginx"). */
  policyFor(registry: string, repo: string): EffectivePolicy {
    return this.first(registry, repo)?.policy ?? this.defaults;
  }

  /** Whether ocimirror may fetch or serve anything of this repository, and if not, which rule says so. */
  access(registry: string, repo: string): Access {
    const rule = this.first(registry, repo);
    if (rule?.rule.deny) return { allowed: false, reason: `${registry}/${repo} is denied by ${rule.name}` };
    if (this.allow.length > 0 && !this.allow.some((a) => a.matches(registry, repo))) {
      return { allowed: false, reason: `${registry}/${repo} matches no allowRepositories entry` };
    }
    return { allowed: true };
  }

  private first(registry: string, repo: string): CompiledRule | undefined {
    return this.rules.find((r) => r.matches(registry, repo));
  }
}

const compiled = new WeakMap<object, Policies>();

/** The Policies of a loaded (frozen) configuration, compiled once. */
export function policiesOf(config: Pick<Config, 'cache' | 'policies' | 'allowRepositories'>): Policies {
  let p = compiled.get(config);
  if (!p) compiled.set(config, (p = new Policies(config)));
  return p;
}

/** `*` matches any run of characters ("/" included: "internal/*" also denies "internal/team/app"), `?` one. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/\*+/g, '*').split('').map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

function patternMatcher(p: RepositoryPattern): (registry: string, repo: string) => boolean {
  const registry = globToRegExp(p.registry);
  const repository = globToRegExp(p.repository);
  return (reg, repo) => registry.test(reg) && repository.test(repo);
}

function tagMatcher(pattern: string | undefined): (tag: string) => boolean {
  if (pattern === undefined) return () => false;
  const re = RE2JS.compile(pattern);
  return (tag) => re.matcher(tag).find();
}
