// Manifests: exact Docker-Content-Digest, Content-Type and Content-Length, for GET and HEAD.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { normaliseAccept } from '../oci/mediatypes.js';
import { checkReference } from '../oci/names.js';
import type { RegistryService } from '../oci/service.js';
import { record } from './context.js';
import { targetOf, type Route } from './routing.js';

export async function serveManifest<M>(service: RegistryService<M>, req: FastifyRequest, reply: FastifyReply, route: Route<M>, ref: string, method: 'GET' | 'HEAD'): Promise<FastifyReply> {
  checkReference(ref);
  const accept = normaliseAccept(req.headers.accept);
  const result = await service.manifest({ ...targetOf(route, req.clientGone), ref, method, accept });
  record(req.ctx, result);
  if (result.warning) reply.header('warning', result.warning);
  reply
    .header('docker-content-digest', result.digest)
    .header('content-type', result.mediaType)
    .header('content-length', String(result.size))
    .header('etag', `"${result.digest}"`);
  return method === 'HEAD' ? reply.send() : reply.send(result.body);
}
