// GET|HEAD /v2/ — the API version check every client pings first.
import type { FastifyInstance } from 'fastify';
import { OciError } from '../oci/errors.js';
import { sendError } from './errors.js';

export function registerBase(app: FastifyInstance): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/',
    handler: async (_req, reply) => {
      reply.header('docker-distribution-api-version', 'registry/2.0').type('application/json');
      return reply.send('{}');
    },
  });
  app.get('/v2', async (_req, reply) => reply.redirect('/v2/', 301));
  // Pull-only: uploads, deletes and catalog are refused clearly instead of 404.
  app.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: async (_req, reply) => sendError(reply, new OciError('UNSUPPORTED', undefined, { message: 'ocimirror is a pull-only mirror' })),
  });
}
