// `mirrors:` and `configs:` exactly as K3s registries.yaml spells them.
import type { Node } from 'yaml';
import type { AuthEntry, MirrorEntry, RegistryConfigEntry, TlsEntry } from './schema.js';
import { join, type Walker } from './validate.js';
import { RE2JS } from 're2js';

export const MIRROR_KEYS = ['endpoint', 'rewrite'] as const;
export const CONFIG_KEYS = ['auth', 'tls'] as const;
export const AUTH_KEYS = ['username', 'password', 'auth', 'identity_token'] as const;
export const TLS_KEYS = ['ca_file', 'cert_file', 'key_file', 'insecure_skip_verify'] as const;

export function readMirrors(w: Walker, node: Node | null | undefined, path: string): Record<string, MirrorEntry> | undefined {
  return w.record(node, path, (value, registry, keyNode) => {
    const p = join(path, registry);
    if (!isRegistryName(registry)) {
      w.fail(keyNode, p, 'expected a registry host[:port] or "*"');
      return undefined;
    }
    const f = w.fields(value, p, MIRROR_KEYS);
    if (!f) return undefined;
    const endpoint = w.strList(f.get('endpoint')?.value, join(p, 'endpoint')) ?? [];
    endpoint.forEach((e, i) => {
      const problem = endpointProblem(e);
      if (problem) w.fail((f.get('endpoint')?.value as { items?: Node[] } | undefined)?.items?.[i], `${join(p, 'endpoint')}[${i}]`, problem);
    });
    const rewrite = w.record(f.get('rewrite')?.value, join(p, 'rewrite'), (v, pattern, patternNode) => {
      const s = w.str(v, join(join(p, 'rewrite'), pattern));
      const err = re2Problem(pattern);
      if (err) return w.fail(patternNode, join(join(p, 'rewrite'), pattern), `expected an RE2 regular expression: ${err}`);
      return s;
    }) ?? {};
    return { endpoint, rewrite };
  });
}

export function readConfigs(w: Walker, node: Node | null | undefined, path: string): Record<string, RegistryConfigEntry> | undefined {
  return w.record(node, path, (value, host) => {
    const p = join(path, host);
    const f = w.fields(value, p, CONFIG_KEYS);
    if (!f) return undefined;
    const out: { auth?: AuthEntry; tls?: TlsEntry } = {};
    const authNode = f.get('auth')?.value;
    if (authNode != null) {
      const a = w.fields(authNode, join(p, 'auth'), AUTH_KEYS);
      if (a) {
        const auth: Record<string, string> = {};
        for (const k of AUTH_KEYS) {
          const v = a.get(k)?.value;
          if (v != null) { const s = w.str(v, join(join(p, 'auth'), k)); if (s !== undefined) auth[k] = s; }
        }
        out.auth = auth;
      }
    }
    const tlsNode = f.get('tls')?.value;
    if (tlsNode != null) {
      const t = w.fields(tlsNode, join(p, 'tls'), TLS_KEYS);
      if (t) {
        const tls: { -readonly [K in keyof TlsEntry]: TlsEntry[K] } = {};
        for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
          const v = t.get(k)?.value;
          if (v != null) { const s = w.str(v, join(join(p, 'tls'), k)); if (s !== undefined) tls[k] = s; }
        }
        const skip = t.get('insecure_skip_verify')?.value;
        if (skip != null) { const b = w.bool(skip, join(join(p, 'tls'), 'insecure_skip_verify')); if (b !== undefined) tls.insecure_skip_verify = b; }
        out.tls = tls;
      }
    }
    return out;
  });
}

/** A mirror key: "*" or a registry host with an optional port. */
export function isRegistryName(name: string): boolean {
  return name === '*' || /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(name);
}

export function endpointProblem(endpoint: string): string | undefined {
  const withScheme = endpoint.includes('://') ? endpoint : `https://${endpoint}`;
  let u: URL;
  try { u = new URL(withScheme); } catch { return `expected an endpoint URL like https://host[:port], got ${JSON.stringify(endpoint)}`; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `expected an http:// or https:// endpoint, got ${JSON.stringify(endpoint)}`;
  if (u.username || u.password) return 'credentials do not belong in an endpoint URL; put them under configs.<host>.auth';
  if (u.search || u.hash) return `expected an endpoint without query or fragment, got ${JSON.stringify(endpoint)}`;
  // The URL parser forgives what normalisation reads verbatim ("a\b" is a host and a path to it): the host as
  // written must be a plain host[:port].
  const written = /^[^/]*/.exec(withScheme.slice(withScheme.indexOf('://') + 3))?.[0] ?? '';
  if (!/^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(written)) {
    return `expected an endpoint URL like https://host[:port], got ${JSON.stringify(endpoint)}`;
  }
  return undefined;
}

export function re2Problem(pattern: string): string | undefined {
  try { RE2JS.compile(pattern); return undefined; } catch (e) { return (e as Error).message; }
}
