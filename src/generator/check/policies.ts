// `policies` and `allowRepositories` that load but cannot do what they say: a rule behind an earlier one that
// matches everything it does, a glob naming no registry ocimirror serves, cache settings on a deny rule (never
// used), and immutableTags that would freeze `latest`. Shapes and types are the loader's job (file:line:col there).
import { RE2JS } from 're2js';
import { globToRegExp } from '../../config/policies.js';
import type { Config, PolicyRule, RepositoryPattern } from '../../config/schema.js';
import type { Finding } from './findings.js';

export function checkPolicies(config: Pick<Config, 'mirrors' | 'policies' | 'allowRepositories'>, opts: { mirrorsKnown: boolean }): Finding[] {
  const out: Finding[] = [];
  const registries = Object.keys(config.mirrors);
  const servesAny = registries.includes('*');
  const noRegistry = (p: RepositoryPattern) => opts.mirrorsKnown && !servesAny && !registries.some((r) => globToRegExp(p.registry).test(r));

  config.policies.forEach((rule, i) => {
    const earlier = config.policies.slice(0, i).findIndex((e) => covers(e.match, rule.match));
    if (earlier >= 0) {
      out.push(finding(rule.match.at, 'warning', 'policy-unreachable', `policies[${i}] never applies: policies[${earlier}] matches every repository it does (the first match wins)`,
        `move policies[${i}] above policies[${earlier}], or remove it`));
    }
    if (noRegistry(rule.match)) {
      out.push(finding(rule.match.at, 'warning', 'policy-no-registry', `policies[${i}] matches registry "${rule.match.registry}", which no mirrors: entry serves`,
        `use one of ${registries.join(', ') || '(no mirrors)'}, or add the registry to mirrors:`));
    }
    const unused = rule.deny ? cacheFields(rule) : [];
    if (unused.length > 0) {
      out.push(finding(rule.match.at, 'warning', 'policy-deny-settings', `policies[${i}] denies, so its ${unused.join(', ')} ${unused.length > 1 ? 'have' : 'has'} no effect`,
        'remove them, or drop deny: true'));
    }
    if (rule.immutableTags !== undefined && RE2JS.compile(rule.immutableTags).matcher('latest').find()) {
      out.push(finding(rule.match.at, 'warning', 'immutable-latest', `policies[${i}].immutableTags matches "latest": such a tag would never be revalidated`,
        "anchor the pattern to version tags, e.g. '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'"));
    }
  });
  config.allowRepositories.forEach((p, i) => {
    if (noRegistry(p)) {
      out.push(finding(p.at, 'warning', 'allow-no-registry', `allowRepositories[${i}] names registry "${p.registry}", which no mirrors: entry serves`,
        `use one of ${registries.join(', ') || '(no mirrors)'}`));
    }
  });
  return out;
}

/** Every repository `b` matches, `a` matches too (checked for the cases that matter: catch-alls and equal globs). */
function covers(a: RepositoryPattern, b: RepositoryPattern): boolean {
  const all = (g: string) => /^\*+$/.test(g);
  const part = (x: string, y: string) => all(x) || x === y;
  return part(a.registry, b.registry) && part(a.repository, b.repository);
}

function cacheFields(rule: PolicyRule): string[] {
  const names: [keyof PolicyRule, string][] = [['tagTtlMs', 'tagTtl'], ['immutableTags', 'immutableTags'], ['staleIfErrorMs', 'staleIfError'], ['staleIfNotFoundMs', 'staleIfNotFound'], ['negativeTtlMs', 'negativeTtl']];
  return names.filter(([k]) => rule[k] !== undefined).map(([, n]) => n);
}

function finding(at: string, severity: Finding['severity'], code: string, message: string, fix: string): Finding {
  const m = /^(.*):(\d+):(\d+)$/.exec(at);
  return { file: m?.[1] ?? at, line: Number(m?.[2] ?? 1), col: Number(m?.[3] ?? 1), severity, code, message, fix };
}
