// Every error leaves as OCI JSON {"errors":[{"code","message","detail"}]} with its status.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';

export function sendError(reply: FastifyReply, err: OciError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  reply.code(err.status).type('application/json; charset=utf-8');
  return reply.send(JSON.stringify(err.toJSON()));
}

export function errorHandler(this: unknown, error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof OciError) {
    const attempts = (error.detail as { attempts?: string[] } | undefined)?.attempts;
    if (attempts && request.ctx && !request.ctx.attempts) request.ctx.failed = attempts;
    return sendError(reply, error);
  }
  const status = (error as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) {
    return sendError(reply, new OciError(status === 405 ? 'UNSUPPORTED' : 'NOT_FOUND', undefined, { status, message: error.message }));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, new OciError('UNKNOWN', undefined, { message: 'internal error' }));
}
