// Blobs: streamed with backpressure, Range → 206 / 416, exact digest and length headers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { checkDigest } from '../oci/names.js';
import { parseRange, type RegistryService } from '../oci/service.js';
import { record } from './context.js';
import type { Route } from './routing.js';

export async function serveBlob(service: RegistryService, req: FastifyRequest, reply: FastifyReply, route: Route, digest: string, method: 'GET' | 'HEAD'): Promise<FastifyReply> {
  checkDigest(digest);
  const range = method === 'GET' ? parseRange(req.headers.range) : undefined;
  const result = await service.blob({ registry: route.registry, repo: route.repo, digest, method, signal: req.clientGone, ...(range ? { range } : {}) });
  record(req.ctx, result);
  reply
    .header('docker-content-digest', result.digest)
    .header('accept-ranges', 'bytes')
    .header('content-type', result.mediaType && result.mediaType !== 'application/json' ? result.mediaType : 'application/octet-stream')
    .header('etag', `"${result.digest}"`)
    .header('cache-control', 'max-age=31536000');
  if (method === 'HEAD') return reply.header('content-length', String(result.size)).send();
  if (range && !result.range) {
    result.stream?.destroy();
    throw new OciError('RANGE_INVALID', { range: req.headers.range, size: result.size }, { headers: { 'content-range': `bytes */${result.size}` } });
  }
  if (result.range) {
    const { start, end } = result.range;
    reply.code(206).header('content-range', `bytes ${start}-${end}/${result.size}`).header('content-length', String(end - start + 1));
  } else {
    reply.header('content-length', String(result.size));
  }
  return reply.send(result.stream);
}
