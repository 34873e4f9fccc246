// Findings for `mirrors:`: registry names, their endpoints and rewrite rules.
import { isRegistryName, MIRROR_KEYS } from '../../config/registries.js';
import type { FindingSink } from './findings.js';
import { checkEndpoints, type SeenEndpoint } from './endpoints.js';
import { freeFields, keyText, knownFields } from './keys.js';
import { checkRewrites } from './rewrite.js';
import type { Node } from 'yaml';

export interface MirrorSummary {
  readonly registries: readonly string[];
  readonly endpoints: readonly SeenEndpoint[];
}

export function checkMirrors(sink: FindingSink, node: Node | null | undefined): MirrorSummary {
  const registries: string[] = [];
  const endpoints: SeenEndpoint[] = [];
  for (const pair of freeFields(sink, node, 'mirrors')) {
    const name = keyText(pair);
    if (!isRegistryName(name)) {
      sink.add(pair.key, 'error', 'registry-name-invalid', `mirror name "${name}" is not a registry host[:port] or "*": no image reference ever matches it`,
        'name the registry as image references do, e.g. "docker.io" or "registry.example.com:5000" (no scheme, no path)');
    }
    registries.push(name.toLowerCase());
    const f = knownFields(sink, pair.value, `mirrors."${name}"`, MIRROR_KEYS);
    if (!f) continue;
    endpoints.push(...checkEndpoints(sink, name.toLowerCase(), f.get('endpoint')?.value));
    checkRewrites(sink, name, f.get('rewrite')?.value);
  }
  return { registries, endpoints };
}
