// tags/list (paginated; Link rewritten to point back at this proxy and keep ns) and referrers (forwarded).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { checkDigest } from '../oci/names.js';
import type { ListResult, RegistryService } from '../oci/service.js';
import { record } from './context.js';
import { targetOf, type Route } from './routing.js';

export async function serveTags<M>(service: RegistryService<M>, req: FastifyRequest, reply: FastifyReply, route: Route<M>, query: string): Promise<FastifyReply> {
  const result = await service.tags({ ...targetOf(route, req.clientGone), query });
  return sendList(req, reply, route, result, 'tags/list');
}

export async function serveReferrers<M>(service: RegistryService<M>, req: FastifyRequest, reply: FastifyReply, route: Route<M>, digest: string, query: string): Promise<FastifyReply> {
  checkDigest(digest);
  const result = await service.referrers({ ...targetOf(route, req.clientGone), digest, query });
  if (result.filtersApplied) reply.header('oci-filters-applied', result.filtersApplied);
  return sendList(req, reply, route, result, `referrers/${digest}`);
}

function sendList(req: FastifyRequest, reply: FastifyReply, route: LinkRoute, result: ListResult, resource: string): FastifyReply {
  record(req.ctx, result);
  if (result.link) {
    const link = rewriteLink(result.link, route, resource);
    if (link) reply.header('link', link);
  }
  return reply.type(result.contentType).header('content-length', String(result.body.length)).send(result.body);
}

/** What a Link rewrite needs of the route: how the client named the repository. */
type LinkRoute = Pick<Route, 'registry' | 'clientName' | 'viaNs'>;

/** `</v2/<upstream name>/tags/list?n=2&last=b>; rel="next"` → the same page on this proxy, under the client's name. */
export function rewriteLink(link: string, route: LinkRoute, resource: string): string | undefined {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (!m) return undefined;
  let next: URL;
  try { next = new URL(m[1] as string, 'http://upstream.invalid'); } catch { return undefined; }
  const params = new URLSearchParams();
  for (const [k, v] of next.searchParams) if (k !== 'ns') params.set(k, v);
  if (route.viaNs) params.set('ns', route.registry);
  return `</v2/${route.clientName}/${resource}?${params.toString()}>; rel="next"`;
}
