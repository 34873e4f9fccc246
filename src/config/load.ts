// YAML → validate (every problem with file:line:col) → frozen Config. Validation happens once, at start-up.
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { DEFAULTS, type Config, type ListenAddress, type MirrorEntry, type RegistryConfigEntry } from './schema.js';
import { ConfigError, Walker, join, readConfigFile } from './validate.js';
import { readCluster, readStore } from './cluster.js';
import { immutableTagsAt, rateLimitThresholdAt, readAllowRepositories, readPolicies } from './policy-schema.js';
import { readConfigs, readMirrors, isRegistryName } from './registries.js';
import { parseDuration, parseSize } from './units.js';

const TOP_KEYS = ['server', 'cache', 'upstream', 'defaultRegistry', 'log', 'registries', 'mirrors', 'configs', 'cluster', 'policies', 'allowRepositories'];
const SERVER_KEYS = ['listen', 'url', 'tls', 'auth', 'headersTimeout', 'keepAliveTimeout', 'idleTimeout', 'maxConnections', 'shutdownGrace'];
const CACHE_KEYS = ['dir', 'maxSize', 'maxEntries', 'tagTtl', 'fillTimeout', 'maxFills', 'maxDetachedFills', 'memorySize', 'store', 'immutableTags', 'staleIfError', 'staleIfNotFound', 'negativeTtl'];
const UPSTREAM_KEYS = ['connectTimeout', 'responseTimeout', 'readTimeout', 'failureStatus', 'appendDefaultEndpoint', 'allowPrivateNetworks', 'health', 'rateLimitThreshold'];
const HEALTH_KEYS = ['failureThreshold', 'cooldown', 'maxCooldown', 'probeInterval'];
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function parseYaml(file: string, text: string): { root: Node | null; w: Walker } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const w = new Walker(file, lines);
  for (const e of doc.errors) {
    const { line, col } = lines.linePos(e.pos[0]);
    w.problems.push(`${file}:${line}:${col}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  return { root: doc.contents as Node | null, w };
}

export interface LoadOptions {
  listen?: string;
  /** false: do not require TLS files to exist (generating node configs on a workstation). */
  checkFiles?: boolean;
  /** Where AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, REDIS_URL, OCIMIRROR_ADVERTISE_URL and OCIMIRROR_CLUSTER_SECRET come from (process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

export function loadConfig(file: string, overrides: LoadOptions = {}): Config {
  return parseConfig(file, readConfigFile(file, 'the configuration'), overrides);
}

export function parseConfig(file: string, text: string, overrides: LoadOptions = {}): Config {
  const { root, w } = parseYaml(file, text);
  if (w.problems.length) throw new ConfigError(w.problems);
  // Relative paths resolve against the working directory, like every other path given on a command line.
  const base = process.cwd();
  const top = w.fields(root, '', TOP_KEYS) ?? new Map();
  const v = (m: Map<string, { value: Node | null }> | undefined, k: string) => m?.get(k)?.value;

  const duration = (node: Node | null | undefined, path: string, dflt: string): number =>
    (node == null ? parseDuration(dflt) as number : (w.duration(node, path) ?? 0));
  const size = (node: Node | null | undefined, path: string, dflt: string): number => {
    if (node == null) return parseSize(dflt) as number;
    const s = w.str(node, path);
    const n = s === undefined ? undefined : parseSize(s);
    if (s !== undefined && n === undefined) w.fail(node, path, `expected a size like "20GiB" or "500MB", got ${JSON.stringify(s)}`);
    return n ?? 0;
  };
  const str = (node: Node | null | undefined, path: string, dflt: string) => (node == null ? dflt : (w.str(node, path) ?? dflt));

  const server = w.fields(v(top, 'server'), 'server', SERVER_KEYS);
  const listenText = overrides.listen ?? str(v(server, 'listen'), 'server.listen', DEFAULTS.listen);
  const listen = parseListen(listenText);
  if (!listen) w.fail(v(server, 'listen'), 'server.listen', `expected HOST:PORT like "0.0.0.0:5000", got ${JSON.stringify(listenText)}`);
  const url = str(v(server, 'url'), 'server.url', `http://${listen && !['0.0.0.0', '::'].includes(listen.host) ? hostPort(listen) : `127.0.0.1:${listen?.port ?? 5000}`}`);
  if (!/^https?:\/\/[^/]+\/?$/.test(url)) w.fail(v(server, 'url'), 'server.url', `expected http(s)://host[:port] without a path, got ${JSON.stringify(url)}`);
  let serverTls: { cert_file: string; key_file: string } | undefined;
  const tlsNode = v(server, 'tls');
  if (tlsNode != null) {
    const t = w.fields(tlsNode, 'server.tls', ['cert_file', 'key_file']);
    const cert = w.str(v(t, 'cert_file'), 'server.tls.cert_file');
    const key = w.str(v(t, 'key_file'), 'server.tls.key_file');
    const file = (node: Node | null | undefined, path: string, f: string) => (overrides.checkFiles === false ? resolve(base, f) : checkFile(w, node, path, base, f));
    if (cert && key) serverTls = { cert_file: file(v(t, 'cert_file'), 'server.tls.cert_file', cert), key_file: file(v(t, 'key_file'), 'server.tls.key_file', key) };
  }

  let serverAuth: { htpasswd: string; realm: string } | undefined;
  const authNode = v(server, 'auth');
  if (authNode != null) {
    const a = w.fields(authNode, 'server.auth', ['htpasswd', 'realm']);
    const file = a?.get('htpasswd') ? w.str(v(a, 'htpasswd'), 'server.auth.htpasswd') : w.fail(authNode, 'server.auth.htpasswd', 'expected the path of an htpasswd file (bcrypt, as `htpasswd -B` writes)');
    const realm = str(v(a, 'realm'), 'server.auth.realm', 'ocimirror');
    if (file) serverAuth = { htpasswd: overrides.checkFiles === false ? resolve(base, file) : checkFile(w, v(a, 'htpasswd'), 'server.auth.htpasswd', base, file), realm };
  }

  const cache = w.fields(v(top, 'cache'), 'cache', CACHE_KEYS);
  const env = overrides.env ?? process.env;
  const store = readStore(w, v(cache, 'store'), env);
  const cluster = readCluster(w, v(top, 'cluster'), top.has('cluster'), env, store);
  const up = w.fields(v(top, 'upstream'), 'upstream', UPSTREAM_KEYS);
  const health = w.fields(v(up, 'health'), 'upstream.health', HEALTH_KEYS);
  const failureStatusNode = v(up, 'failureStatus');
  let failureStatus: 503 | 504 | 404 = DEFAULTS.failureStatus;
  if (failureStatusNode != null) {
    const n = w.int(failureStatusNode, 'upstream.failureStatus', 100, 599);
    if (n !== undefined && n !== 503 && n !== 504 && n !== 404) w.fail(failureStatusNode, 'upstream.failureStatus', `expected 503, 504 or 404, got ${n}`);
    else if (n !== undefined) failureStatus = n;
  }
  const appendNode = v(up, 'appendDefaultEndpoint');
  const appendDefaultEndpoint = appendNode == null ? false : (w.bool(appendNode, 'upstream.appendDefaultEndpoint') ?? false);
  const privateNode = v(up, 'allowPrivateNetworks');
  const allowPrivateNetworks = privateNode == null ? false : (w.bool(privateNode, 'upstream.allowPrivateNetworks') ?? false);
  const limits = {
    headersTimeoutMs: duration(v(server, 'headersTimeout'), 'server.headersTimeout', DEFAULTS.headersTimeout),
    keepAliveTimeoutMs: duration(v(server, 'keepAliveTimeout'), 'server.keepAliveTimeout', DEFAULTS.keepAliveTimeout),
    idleTimeoutMs: duration(v(server, 'idleTimeout'), 'server.idleTimeout', DEFAULTS.idleTimeout),
    maxConnections: v(server, 'maxConnections') == null ? DEFAULTS.maxConnections : (w.int(v(server, 'maxConnections'), 'server.maxConnections', 1, 1_000_000) ?? 0),
  };
  const thresholdNode = v(health, 'failureThreshold');
  const failureThreshold = thresholdNode == null ? DEFAULTS.failureThreshold : (w.int(thresholdNode, 'upstream.health.failureThreshold', 1, 1000) ?? 1);

  const defaultRegistry = str(v(top, 'defaultRegistry'), 'defaultRegistry', DEFAULTS.defaultRegistry);
  if (!isRegistryName(defaultRegistry) || defaultRegistry === '*') w.fail(v(top, 'defaultRegistry'), 'defaultRegistry', `expected a registry host like "docker.io", got ${JSON.stringify(defaultRegistry)}`);
  const log = w.fields(v(top, 'log'), 'log', ['level']);
  const level = str(v(log, 'level'), 'log.level', DEFAULTS.logLevel);
  if (!(LOG_LEVELS as readonly string[]).includes(level)) w.fail(v(log, 'level'), 'log.level', `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);

  let mirrors: Record<string, MirrorEntry> = Object.create(null) as Record<string, MirrorEntry>;
  let configs: Record<string, RegistryConfigEntry> = Object.create(null) as Record<string, RegistryConfigEntry>;
  let registries: string | undefined;
  const regNode = v(top, 'registries');
  if (regNode != null) {
    if (top.has('mirrors') || top.has('configs')) w.fail(regNode, 'registries', 'expected either registries: or mirrors:/configs:, not both');
    const p = w.str(regNode, 'registries');
    if (p !== undefined) {
      registries = resolve(base, p);
      const loaded = loadRegistriesFile(registries, { checkFiles: overrides.checkFiles !== false });
      mirrors = loaded.mirrors; configs = loaded.configs;
    }
  } else {
    mirrors = readMirrors(w, v(top, 'mirrors'), 'mirrors') ?? mirrors;
    configs = readConfigs(w, v(top, 'configs'), 'configs') ?? configs;
    if (overrides.checkFiles !== false) checkTlsFiles(w, v(top, 'configs'), configs, base);
  }

  const immutableTags = immutableTagsAt(w, v(cache, 'immutableTags'), 'cache.immutableTags');
  const policyDefaults = {
    ...(immutableTags !== undefined ? { immutableTags } : {}),
    staleIfErrorMs: duration(v(cache, 'staleIfError'), 'cache.staleIfError', DEFAULTS.staleIfError),
    staleIfNotFoundMs: duration(v(cache, 'staleIfNotFound'), 'cache.staleIfNotFound', DEFAULTS.staleIfNotFound),
    negativeTtlMs: duration(v(cache, 'negativeTtl'), 'cache.negativeTtl', DEFAULTS.negativeTtl),
  };
  const config: Config = {
    source: file,
    server: {
      listen: listen as ListenAddress, url: url.replace(/\/$/, ''), ...(serverTls ? { tls: serverTls } : {}), ...(serverAuth ? { auth: serverAuth } : {}), limits,
      shutdownGraceMs: duration(v(server, 'shutdownGrace'), 'server.shutdownGrace', DEFAULTS.shutdownGrace),
    },
    cache: {
      dir: resolve(base, str(v(cache, 'dir'), 'cache.dir', DEFAULTS.cacheDir)),
      maxSize: size(v(cache, 'maxSize'), 'cache.maxSize', DEFAULTS.maxSize),
      maxEntries: v(cache, 'maxEntries') == null ? DEFAULTS.maxEntries : (w.int(v(cache, 'maxEntries'), 'cache.maxEntries', 100, 100_000_000) ?? 0),
      tagTtlMs: duration(v(cache, 'tagTtl'), 'cache.tagTtl', DEFAULTS.tagTtl),
      fillTimeoutMs: duration(v(cache, 'fillTimeout'), 'cache.fillTimeout', DEFAULTS.fillTimeout),
      maxFills: v(cache, 'maxFills') == null ? DEFAULTS.maxFills : (w.int(v(cache, 'maxFills'), 'cache.maxFills', 1, 10_000) ?? 0),
      maxDetachedFills: v(cache, 'maxDetachedFills') == null ? DEFAULTS.maxDetachedFills : (w.int(v(cache, 'maxDetachedFills'), 'cache.maxDetachedFills', 0, 10_000) ?? 0),
      memorySize: size(v(cache, 'memorySize'), 'cache.memorySize', DEFAULTS.memorySize),
      store,
      ...policyDefaults,
    },
    upstream: {
      connectTimeoutMs: duration(v(up, 'connectTimeout'), 'upstream.connectTimeout', DEFAULTS.connectTimeout),
      responseTimeoutMs: duration(v(up, 'responseTimeout'), 'upstream.responseTimeout', DEFAULTS.responseTimeout),
      readTimeoutMs: duration(v(up, 'readTimeout'), 'upstream.readTimeout', DEFAULTS.readTimeout),
      failureStatus,
      appendDefaultEndpoint,
      allowPrivateNetworks,
      health: {
        failureThreshold,
        cooldownMs: duration(v(health, 'cooldown'), 'upstream.health.cooldown', DEFAULTS.cooldown),
        maxCooldownMs: duration(v(health, 'maxCooldown'), 'upstream.health.maxCooldown', DEFAULTS.maxCooldown),
        probeIntervalMs: duration(v(health, 'probeInterval'), 'upstream.health.probeInterval', DEFAULTS.probeInterval),
      },
      rateLimitThreshold: rateLimitThresholdAt(w, v(up, 'rateLimitThreshold'), DEFAULTS.rateLimitThreshold),
    },
    defaultRegistry,
    log: { level: level as Config['log']['level'] },
    ...(registries ? { registries } : {}),
    mirrors,
    configs,
    ...(cluster ? { cluster } : {}),
    policies: readPolicies(w, v(top, 'policies')),
    allowRepositories: readAllowRepositories(w, v(top, 'allowRepositories')),
  };
  if (w.problems.length) throw new ConfigError(w.problems);
  return deepFreeze(config);
}

/** Reads a K3s registries.yaml (only mirrors: and configs:, as K3s has them). */
export function loadRegistriesFile(file: string, opts: { checkFiles?: boolean } = {}): { mirrors: Record<string, MirrorEntry>; configs: Record<string, RegistryConfigEntry> } {
  const { root, w } = parseYaml(file, readConfigFile(file, 'registries file'));
  if (w.problems.length) throw new ConfigError(w.problems);
  const top = w.fields(root, '', ['mirrors', 'configs']) ?? new Map();
  const mirrors = readMirrors(w, top.get('mirrors')?.value, 'mirrors') ?? (Object.create(null) as Record<string, MirrorEntry>);
  const configs = readConfigs(w, top.get('configs')?.value, 'configs') ?? (Object.create(null) as Record<string, RegistryConfigEntry>);
  if (opts.checkFiles !== false) checkTlsFiles(w, top.get('configs')?.value, configs, process.cwd());
  if (w.problems.length) throw new ConfigError(w.problems);
  return { mirrors, configs };
}

function checkTlsFiles(w: Walker, node: Node | null | undefined, configs: Record<string, RegistryConfigEntry>, base: string): void {
  for (const [host, entry] of Object.entries(configs)) {
    const tls = entry.tls as Record<string, unknown> | undefined;
    if (!tls) continue;
    for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
      const file = tls[k];
      if (typeof file !== 'string') continue;
      const at = findNode(node, [host, 'tls', k]);
      tls[k] = checkFile(w, at, join(join(join('configs', host), 'tls'), k), base, file);
    }
    if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
      w.fail(findNode(node, [host, 'tls']), join(join('configs', host), 'tls'), 'expected cert_file and key_file together (a client certificate needs both)');
    }
  }
}

function checkFile(w: Walker, node: Node | null | undefined, path: string, base: string, file: string): string {
  const abs = resolve(base, file);
  try { accessSync(abs, constants.R_OK); } catch (e) {
    w.fail(node, path, `expected a readable file, got ${JSON.stringify(file)} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return abs;
}

function findNode(node: Node | null | undefined, keys: string[]): Node | null | undefined {
  let cur: unknown = node;
  for (const k of keys) {
    const items = (cur as { items?: { key: { value?: unknown }; value: unknown }[] } | null)?.items;
    const pair = items?.find((p) => String(p.key?.value) === k);
    if (!pair) return cur as Node;
    cur = pair.value ?? pair.key;
  }
  return cur as Node;
}

export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function hostPort(l: ListenAddress): string {
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { Object.freeze(o); for (const v of Object.values(o)) deepFreeze(v); }
  return o;
}

export { ConfigError };
