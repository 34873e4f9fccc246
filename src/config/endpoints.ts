// Endpoint normalisation exactly as K3s does it (pkg/agent/containerd: normalizeEndpointAddress), and the
// registry's own default endpoint.

export interface Endpoint {
  /** As written in the config. */
  readonly raw: string;
  /** scheme://host[:port] */
  readonly origin: string;
  /** "/v2", or a custom API root used verbatim (K3s override_path). */
  readonly apiRoot: string;
  /** host[:port] as `configs:` keys it. */
  readonly host: string;
  /** The registry's own endpoint (appended, or implied by an empty list / "*"). */
  readonly isDefault: boolean;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

export function isLocalhost(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}

export function normaliseEndpoint(raw: string, isDefault = false): Endpoint {
  let text = raw.trim();
  let scheme: string | undefined;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  if (m) { scheme = (m[1] as string).toLowerCase(); text = text.slice(m[0].length); }
  const u = new URL(`http://${text}`);
  const port = u.port;
  if (!scheme) scheme = isLocalhost(u.hostname) && port !== '443' ? 'http' : 'https';
  const host = u.host; // URL drops default ports only for its own scheme; keep what was written
  const writtenHost = /^[^/]+/.exec(text)?.[0] ?? host;
  const path = u.pathname.replace(/\/+$/, '') ;
  const apiRoot = path === '' || path === '/v2' ? '/v2' : path;
  return { raw, origin: `${scheme}://${writtenHost.toLowerCase()}`, apiRoot, host: writtenHost.toLowerCase(), isDefault };
}

/** The registry's own API endpoint: docker.io is served by registry-1.docker.io. */
export function defaultEndpoint(registry: string): Endpoint {
  const host = registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
  return normaliseEndpoint(host, true);
}
