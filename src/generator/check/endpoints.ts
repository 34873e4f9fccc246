// Findings for one mirror's `endpoint:` list: what K3s silently does with schemes, paths and duplicates.
import { isScalar, isSeq, type Node } from 'yaml';
import { endpointProblem } from '../../config/registries.js';
import { isLocalhost, normaliseEndpoint } from '../../config/endpoints.js';
import type { FindingSink } from './findings.js';

export interface SeenEndpoint {
  readonly registry: string;
  /** host[:port], the key `configs:` must use. */
  readonly host: string;
  readonly scheme: 'http' | 'https';
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

export function checkEndpoints(sink: FindingSink, registry: string, node: Node | null | undefined): SeenEndpoint[] {
  if (node == null || (isScalar(node) && node.value == null)) return [];
  if (!isSeq(node)) {
    sink.add(node, 'error', 'wrong-type', `mirrors."${registry}".endpoint must be a list; K3s cannot read this file`, `write endpoint: ["https://host:port"]`);
    return [];
  }
  const seen = new Map<string, number>();
  const out: SeenEndpoint[] = [];
  for (const item of node.items as Node[]) {
    if (!isScalar(item) || typeof item.value !== 'string') {
      sink.add(item, 'error', 'wrong-type', 'an endpoint must be a string URL', 'write it as "https://host[:port]"');
      continue;
    }
    const raw = item.value;
    const problem = endpointProblem(raw);
    if (problem) { sink.add(item, 'error', 'endpoint-invalid', problem, 'write the endpoint as "https://host[:port]" or "http://host[:port]"'); continue; }
    const e = normaliseEndpoint(raw);
    const hostname = e.host.startsWith('[') ? e.host.slice(0, e.host.indexOf(']') + 1) : e.host.replace(/:\d+$/, '');
    if (!SCHEME.test(raw.trim()) && !isLocalhost(hostname)) {
      sink.add(item, 'warning', 'endpoint-no-scheme',
        `endpoint "${raw}" has no scheme: K3s uses https://${raw.trim()}, so a plain-http registry fails every pull`,
        `write "https://${raw.trim()}", or "http://${raw.trim()}" if the registry serves plain http`);
    }
    const path = /^(?:[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)?[^/]+(\/.*)?$/.exec(raw.trim())?.[1] ?? '';
    const clean = e.apiRoot === '/v2' ? e.origin : `${e.origin}${e.apiRoot}`;
    if (path === '/') {
      sink.add(item, 'warning', 'endpoint-trailing-slash',
        `endpoint "${raw}" ends in "/": K3s v1.21 (containerd 1.4) uses "/" verbatim as the API root, so requests miss /v2`,
        `write "${clean}"`);
    } else if (path.endsWith('/')) {
      sink.add(item, 'warning', 'endpoint-trailing-slash', `endpoint "${raw}" has a trailing slash`, `write "${clean}"`);
    } else if (path !== '' && path !== '/v2') {
      sink.add(item, 'info', 'endpoint-custom-path',
        `endpoint path "${path}" is used verbatim as the API root (no /v2 appended): requests go to ${e.origin}${path}/<name>/manifests/...`,
        'nothing, if the registry serves its API there; otherwise drop the path');
    }
    const first = seen.get(clean);
    if (first !== undefined) {
      sink.add(item, 'warning', 'endpoint-duplicate', `endpoint "${raw}" is the same as the one on line ${first}: it is tried twice`, 'remove the duplicate');
    } else {
      seen.set(clean, sink.lineOf(item));
    }
    out.push({ registry, host: e.host, scheme: e.origin.startsWith('http://') ? 'http' : 'https' });
  }
  return out;
}
