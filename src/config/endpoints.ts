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
  // URL hides a port equal to its scheme's default (":80"), so read the port as written.
  const port = /:(\d+)$/.exec(/^[^/]+/.exec(text)?.[0] ?? '')?.[1] ?? '';
  // K3s (matching containerd): only loopback *with* a port other than 443 defaults to http.
  if (!scheme) scheme = isLocalhost(u.hostname) && port !== '' && port !== '443' ? 'http' : 'https';
  let writtenHost = (/^[^/]+/.exec(text)?.[0] ?? u.host).toLowerCase();
  // containerd's docker.DefaultHost: the docker.io registry is served by registry-1.docker.io.
  if (writtenHost === 'docker.io') writtenHost = 'registry-1.docker.io';
  const path = u.pathname.replace(/\/+$/, '') ;
  const apiRoot = path === '' || path === '/v2' ? '/v2' : path;
  return { raw, origin: `${scheme}://${writtenHost}`, apiRoot, host: writtenHost, isDefault };
}

/** The registry's own API endpoint: docker.io is served by registry-1.docker.io. */
export function defaultEndpoint(registry: string): Endpoint {
  return normaliseEndpoint(registry === 'index.docker.io' ? 'docker.io' : registry, true);
}
