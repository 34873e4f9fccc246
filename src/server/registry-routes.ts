// GET|HEAD /v2/<name>/(manifests|blobs|tags|referrers)/<ref>: parse, route to a registry, validate, dispatch.
import type { FastifyInstance } from 'fastify';
import { OciError } from '../oci/errors.js';
import { parseApiPath } from '../oci/names.js';
import type { RegistryService } from '../oci/service.js';
import { resolveRoute, type RoutingTable } from './routing.js';
import { sendError } from './errors.js';
import { serveManifest } from './manifests.js';
import { serveBlob } from './blobs.js';
import { serveReferrers, serveTags } from './lists.js';

export interface RouteDeps<M> {
  service: RegistryService<M>;
  routing: RoutingTable<M>;
}

export function registerRegistryRoutes<M>(app: FastifyInstance, deps: RouteDeps<M>): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/*',
    handler: async (req, reply) => {
      const [rawPath = '', rawQuery = ''] = req.url.split('?', 2);
      let path: string;
      try { path = decodeURIComponent(rawPath); } catch { return sendError(reply, new OciError('NAME_INVALID', undefined, { message: 'malformed URL encoding' })); }
      const parsed = parseApiPath(path);
      if (!parsed) return sendError(reply, new OciError('NOT_FOUND', { path }, { message: 'not an OCI distribution API path' }));
      const query = new URLSearchParams(rawQuery);
      const route = resolveRoute(parsed.name, query.get('ns') ?? undefined, deps.routing);
      req.ctx.registry = route.registry;
      req.ctx.repo = route.repo;
      reply.header('oci-namespace', route.registry);
      reply.header('docker-distribution-api-version', 'registry/2.0');
      const method = req.method as 'GET' | 'HEAD';
      switch (parsed.resource) {
        case 'manifests': return serveManifest(deps.service, req, reply, route, parsed.ref, method);
        case 'blobs': return serveBlob(deps.service, req, reply, route, parsed.ref, method);
        case 'tags': return serveTags(deps.service, req, reply, route, forwardQuery(query, ['n', 'last']));
        case 'referrers': return serveReferrers(deps.service, req, reply, route, parsed.ref, forwardQuery(query, ['artifactType']));
      }
    },
  });
}

/** Only the parameters the upstream API defines are forwarded (never ns or anything else a client adds). */
function forwardQuery(query: URLSearchParams, keep: string[]): string {
  const out = new URLSearchParams();
  for (const k of keep) { const v = query.get(k); if (v !== null) out.set(k, v); }
  return out.toString();
}
