// What every node-side generator needs to know: where the proxy is, how nodes trust it, and what it serves.
import type { Config } from '../config/schema.js';
import { orderRegistries } from './registry-yaml.js';
import { isLocalhost, normaliseEndpoint, type Endpoint } from '../config/endpoints.js';

/** The part of a Config the generators read; `generate --from` builds one without a config file. */
export type GeneratorInput = Pick<Config, 'source' | 'mirrors' | 'configs' | 'defaultRegistry'> & {
  readonly server: Pick<Config['server'], 'url'>;
};

export interface ProxyAuth { readonly username: string; readonly password: string }

export interface GenerateOptions {
  /** Path of the proxy's CA certificate on the node (https proxy with a private CA). */
  readonly caFile?: string;
  /** Credentials nodes present to a proxy that requires authentication (server.auth). */
  readonly auth?: ProxyAuth | undefined;
}

export class GenerateError extends Error {
  override readonly name = 'GenerateError';
}

export interface ProxyTarget {
  /** scheme://host[:port], exactly as nodes must write it. */
  readonly origin: string;
  /** host[:port]: the key K3s `configs:` and Docker's insecure-registries use. */
  readonly host: string;
  readonly https: boolean;
  readonly caFile?: string;
}

const PROXY_URL = /^(https?):\/\/([^/?#\s]+)\/?$/i;

/** Checks the proxy URL the way nodes will use it: a root URL, never a path (containerd appends /v2). */
export function proxyTarget(url: string, opts: GenerateOptions = {}): ProxyTarget {
  const m = PROXY_URL.exec(url.trim());
  if (!m) throw new GenerateError(`expected the proxy URL as http(s)://host[:port] without a path, got ${JSON.stringify(url)}`);
  const scheme = (m[1] as string).toLowerCase();
  const host = (m[2] as string).toLowerCase();
  if (opts.caFile !== undefined && scheme !== 'https') {
    throw new GenerateError(`--ca-file only applies to an https proxy, but the proxy URL is ${url}`);
  }
  return { origin: `${scheme}://${host}`, host, https: scheme === 'https', ...(opts.caFile ? { caFile: opts.caFile } : {}) };
}

/** Registries in a stable order: named ones alphabetically, "*" last (it only applies when no name matches). */
export function servedRegistries(input: GeneratorInput): string[] {
  const names = Object.keys(input.mirrors);
  if (names.length === 0) throw new GenerateError(`${input.source} names no mirrors: the proxy would serve nothing`);
  return orderRegistries(names);
}

/** An endpoint as nodes should see it: explicit scheme, no trailing slash, a path only when it is a custom API root. */
export function endpointUrl(e: Endpoint): string {
  return e.apiRoot === '/v2' ? e.origin : `${e.origin}${e.apiRoot}`;
}

/** The mirror's listed endpoints, normalised the K3s way, without duplicates and without the proxy itself. */
export function originalEndpoints(input: GeneratorInput, registry: string, proxy: ProxyTarget): Endpoint[] {
  const seen = new Set<string>([proxy.origin]);
  const out: Endpoint[] = [];
  for (const raw of input.mirrors[registry]?.endpoint ?? []) {
    const e = normaliseEndpoint(raw);
    if (seen.has(endpointUrl(e))) continue;
    seen.add(endpointUrl(e));
    out.push(e);
  }
  return out;
}

/**
 * The registry's own endpoint, which clients try after their mirrors. Its scheme comes from a listed endpoint
 * on the same host when there is one (a plain-http registry stays http), else K3s's rule (https unless loopback).
 */
export function registryOwnOrigin(input: GeneratorInput, registry: string): string {
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  for (const raw of input.mirrors[registry]?.endpoint ?? []) {
    const e = normaliseEndpoint(raw);
    if (e.host === registry.toLowerCase()) return e.origin;
  }
  const host = registry.toLowerCase();
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  const port = /:(\d+)$/.exec(host)?.[1];
  // K3s and containerd: loopback defaults to http only when written with a port other than 443.
  return `${isLocalhost(hostname) && port !== undefined && port !== '443' ? 'http' : 'https'}://${host}`;
}

/** True when the registry's own endpoint is plain http (podman/Docker then need it marked insecure). */
export function registryIsHttp(input: GeneratorInput, registry: string): boolean {
  return registryOwnOrigin(input, registry).startsWith('http://');
}
