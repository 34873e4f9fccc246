// `generate k3s --from`: a node's registries.yaml → the proxy configuration that takes over its mirrors and
// configs (endpoints, credentials, TLS), loadable by `ocimirror serve --config`.
import type { MirrorEntry, RegistryConfigEntry } from '../config/schema.js';
import { proxyTarget, type GeneratorInput } from './target.js';
import { configEntryYaml, orderRegistries } from './registry-yaml.js';
import { commentBlock, emitYaml, yamlMap, type YamlEntry } from './yaml-writer.js';

export interface MigrationInput {
  /** The node's registries.yaml that was read. */
  readonly source: string;
  readonly mirrors: Readonly<Record<string, MirrorEntry>>;
  readonly configs: Readonly<Record<string, RegistryConfigEntry>>;
  /** How nodes reach the proxy (`--url`). */
  readonly url: string;
}

/** Placeholders an https proxy needs filled in; loading fails loudly until they exist. */
export const TLS_PLACEHOLDER = { cert_file: '/etc/ocimirror/tls.crt', key_file: '/etc/ocimirror/tls.key' } as const;

/** The input the node-side generators need, for the same migration. */
export function migrationTarget(m: MigrationInput): GeneratorInput {
  return { source: m.source, server: { url: m.url }, mirrors: m.mirrors, configs: m.configs, defaultRegistry: 'docker.io' };
}

export function generateProxyConfig(m: MigrationInput): string {
  const proxy = proxyTarget(m.url);
  const port = /:(\d+)$/.exec(proxy.host)?.[1] ?? (proxy.https ? '443' : '80');
  const mirrors: YamlEntry[] = orderRegistries(Object.keys(m.mirrors)).map((registry) => {
    const entry = m.mirrors[registry] as MirrorEntry;
    const rewrite = Object.entries(entry.rewrite ?? {}).map(([k, v]) => [k, v] as const);
    return [registry, yamlMap(['endpoint', [...entry.endpoint]], rewrite.length > 0 && ['rewrite', yamlMap(...rewrite)])] as const;
  });
  const configs: YamlEntry[] = orderRegistries(Object.keys(m.configs)).map((host) => [host, configEntryYaml(m.configs[host] as RegistryConfigEntry)] as const);
  const body = yamlMap(
    ['server', yamlMap(
      ['listen', `0.0.0.0:${port}`],
      ['url', proxy.origin],
      proxy.https && { comment: 'The proxy serves https at this URL: put its certificate and key at these paths.' },
      proxy.https && ['tls', yamlMap(['cert_file', TLS_PLACEHOLDER.cert_file], ['key_file', TLS_PLACEHOLDER.key_file])],
    )],
    ['upstream', yamlMap(
      { comment: 'K3s tried each registry\'s own endpoint after the listed ones; the proxy keeps doing that.' },
      ['appendDefaultEndpoint', true],
    )],
    ['defaultRegistry', 'docker.io'],
    { comment: `mirrors and configs exactly as ${m.source} had them (configs keyed by endpoint host[:port]).` },
    ['mirrors', yamlMap(...mirrors)],
    ['configs', yamlMap(...configs)],
  );
  const lines = [
    'ocimirror proxy configuration (the PROXY file): it now holds the mirrors and configs (endpoints, credentials, TLS)',
    `that ${m.source} gave each node. Migrated by \`ocimirror generate k3s --from\`; the nodes' new registries.yaml,`,
    `written by the same run, points them at this proxy (${proxy.origin}).`,
    'Install on the proxy host and run `ocimirror serve --config <this file>`. It may hold credentials: chmod 600.',
    'TLS files named under configs were paths on the node: they must exist at the same paths on the proxy host.',
    'Keys not written here take their defaults; config/ocimirror.yaml documents every key.',
  ];
  return commentBlock(lines) + emitYaml(body);
}
