// Blobs: streamed with backpressure, exact digest and length headers. The service says what to answer (a
// RangePlan decided once, warm or cold): this route only maps it to 200, 206 or 416. A cached blob comes as a
// sender that writes into the raw response from reused buffers; everything else as a stream fastify pipes.
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { checkDigest } from '../oci/names.js';
import { parseRange, planLength } from '../oci/range.js';
import type { BlobResult, RegistryService } from '../oci/service.js';
import { record } from './context.js';
import { targetOf, type Route } from './routing.js';

export async function serveBlob<M>(service: RegistryService<M>, req: FastifyRequest, reply: FastifyReply, route: Route<M>, digest: string, method: 'GET' | 'HEAD'): Promise<FastifyReply> {
  checkDigest(digest);
  const range = method === 'GET' ? parseRange(req.headers.range) : undefined;
  const result = await service.blob({ ...targetOf(route, req.clientGone), digest, method, acceptsSender: true, ...(range ? { range } : {}) });
  record(req.ctx, result);
  return replyWithBlob(req, reply, result);
}

/** Maps a blob result to 200, 206 or 416 with the blob's headers (the registry route, and replicas following a fill). */
export function replyWithBlob(req: FastifyRequest, reply: FastifyReply, result: BlobResult): FastifyReply {
  reply
    .header('docker-content-digest', result.digest)
    .header('accept-ranges', 'bytes')
    .header('content-type', result.mediaType && result.mediaType !== 'application/json' ? result.mediaType : 'application/octet-stream')
    .header('etag', `"${result.digest}"`)
    .header('cache-control', 'max-age=31536000');
  // The signed URL expires: the redirect itself must not be cached.
  if (result.redirect) return reply.code(307).header('location', result.redirect).header('cache-control', 'no-store').send();
  const { plan } = result;
  switch (plan.kind) {
    case 'head':
      return reply.header('content-length', String(result.size)).send();
    case 'unsatisfiable':
      result.stream?.destroy();
      result.sender?.discard();
      throw new OciError('RANGE_INVALID', { range: req.headers.range, size: result.size }, { headers: { 'content-range': `bytes */${result.size}` } });
    case 'partial':
      reply.code(206).header('content-range', `bytes ${plan.start}-${plan.end}/${result.size}`).header('content-length', String(planLength(plan)));
      return sendBody(reply, result);
    case 'full':
      return sendBody(reply.header('content-length', String(result.size)), result);
  }
}

/**
 * A sender writes the body into the raw response itself: the status and headers are all set by now (nosniff and
 * the rest come from onRequest hooks), so fastify has nothing left to add; its onResponse hooks still run on the
 * response's 'finish'. A failure part-way destroys the response, as a failed stream does.
 */
function sendBody(reply: FastifyReply, result: BlobResult): FastifyReply {
  const sender = result.sender;
  if (!sender) return reply.send(result.stream);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  sender.sendTo(res).then(() => res.end(), (err: Error) => {
    if (err.message !== 'client hung up') reply.log.warn({ digest: result.digest, err }, 'reading a cached blob failed part-way; the response was cut');
  });
  return reply;
}
