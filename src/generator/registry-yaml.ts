// Shared pieces of the YAML files that carry K3s `mirrors:`/`configs:` (the node file and the proxy file).
import type { RegistryConfigEntry } from '../config/schema.js';
import { AUTH_KEYS, TLS_KEYS } from '../config/registries.js';
import { yamlMap, type YamlEntry, type YamlMap } from './yaml-writer.js';

/** Stable order: named entries alphabetically, "*" last (K3s uses it only when no name matches). */
export function orderRegistries(names: readonly string[]): string[] {
  return names.filter((n) => n !== '*').sort().concat(names.includes('*') ? ['*'] : []);
}

/** A `configs:` entry with its keys in K3s's documented order. */
export function configEntryYaml(entry: RegistryConfigEntry): YamlMap {
  const pick = (o: object | undefined, keys: readonly string[]): YamlEntry[] => {
    const values = (o ?? {}) as Readonly<Record<string, string | boolean | undefined>>;
    return keys.filter((k) => values[k] !== undefined).map((k) => [k, values[k] as string | boolean] as const);
  };
  const auth = pick(entry.auth, AUTH_KEYS);
  const tls = pick(entry.tls, TLS_KEYS);
  return yamlMap(auth.length > 0 && ['auth', yamlMap(...auth)], tls.length > 0 && ['tls', yamlMap(...tls)]);
}
