// buildApp(config, deps) without listening: routes, the OCI error handler and one access-log line per request.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServerLimits } from '../config/schema.js';
import { OciError } from '../oci/errors.js';
import type { RegistryService } from '../oci/service.js';
import { registerBase } from './base.js';
import { errorHandler, sendError } from './errors.js';
import { registerRegistryRoutes } from './registry-routes.js';
import { Turns } from './turns.js';
import { MAX_PIPELINED, PipelineLimit } from './pipelined.js';
import type { RoutingTable } from './routing.js';
import './context.js';

export interface AppDeps<M> {
  service: RegistryService<M>;
  routing: RoutingTable<M>;
  logger: Logger;
  /** Token this instance puts in Via; a request already carrying it has looped back through us. */
  via: string;
  /** Extra routes (health, metrics) registered by their owners. */
  plugins?: ((app: FastifyInstance) => void)[];
  https?: { cert: Buffer; key: Buffer };
  /** Connection timeouts and cap (config server.*); Node's defaults when absent (tests that inject). */
  limits?: ServerLimits;
  /** Where registry requests wait for their turn (shared with the metrics); a new one when absent. */
  turns?: Turns;
}

/**
 * What only Node's createServer takes (fastify sets requestTimeout, keepAliveTimeout and the socket timeout itself,
 * after creating the server). Node's checks of headersTimeout run every connectionsCheckingInterval (30 s by
 * default): make it keep up.
 */
function serverOptions(limits: ServerLimits | undefined): Record<string, number> {
  if (!limits) return {};
  return {
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

export function buildApp<M>(deps: AppDeps<M>): FastifyInstance {
  const limits = deps.limits;
  const app = Fastify({
    loggerInstance: deps.logger,
    // One access line per request is written by our onResponse hook instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1024 },
    ...(deps.https ? { https: { ...serverOptions(limits), ...deps.https } } : { http: serverOptions(limits) }),
    ...(limits ? { connectionTimeout: limits.idleTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, requestTimeout: limits.headersTimeoutMs * 2 } : {}),
  }) as unknown as FastifyInstance;
  if (limits) app.server.maxConnections = limits.maxConnections;

  const turns = deps.turns ?? new Turns();
  const pipelined = new PipelineLimit();
  app.decorateRequest('ctx', null as never);
  app.decorateRequest('clientGone', null as never);
  app.addHook('onRequest', async (req, reply) => {
    const socket = req.raw.socket;
    if (!pipelined.admit(socket)) {
      req.log.debug({ limit: MAX_PIPELINED }, 'closing a connection with too many pipelined requests in flight');
      reply.hijack();
      return reply;
    }
    req.ctx = {};
    reply.header('x-content-type-options', 'nosniff');
    const controller = new AbortController();
    req.clientGone = controller.signal;
    reply.raw.on('close', () => {
      pipelined.done(socket);
      if (!reply.raw.writableFinished) controller.abort();
    });
    // Origin-form only: "GET http://host/v2/ HTTP/1.1" (a forward-proxy request) or "OPTIONS *" never reaches a route.
    if (!req.url.startsWith('/')) {
      return sendError(reply, new OciError('UNSUPPORTED', undefined, { status: 400, message: 'expected an origin-form request target (/v2/...): ocimirror is not a forward proxy' }));
    }
    const via = req.headers.via;
    if (via && String(via).includes(deps.via)) {
      return sendError(reply, new OciError('UNAVAILABLE', { via }, { status: 508, message: 'request loop: this mirror is its own upstream' }));
    }
    return undefined;
  });
  // Probes, scrapes and the status page go first (turns.ts). After every onRequest hook: a password flood meets
  // its 429s at once, not after waiting its turn.
  app.addHook('preHandler', async (req) => {
    if (req.url.startsWith('/v2')) await turns.wait();
  });
  app.addHook('onResponse', async (req, reply) => {
    const c = req.ctx ?? {};
    // Probes and scrapes arrive every few seconds: keep them out of the info-level access log.
    const level = req.url.startsWith('/v2') ? 'info' : 'debug';
    req.log[level]({
      method: req.method, url: req.url, ua: req.headers['user-agent'], status: reply.statusCode,
      bytes: Number(reply.getHeader('content-length') ?? 0), ms: Math.round(reply.elapsedTime),
      registry: c.registry, endpoint: c.endpoint, cache: c.cache,
      attempts: c.attempts?.map((a) => `${a.endpoint} ${a.error ?? a.status} ${a.ms}ms`) ?? c.failed,
      ...(reply.raw.writableFinished ? {} : { aborted: true }),
    }, 'request');
  });
  // Pull-only: request bodies are never read, so no content type is ever refused with 415 before our 405.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => sendError(reply, new OciError('NOT_FOUND', { path: req.url.split('?')[0] }, { message: 'not an OCI distribution API path' })));

  registerBase(app);
  registerRegistryRoutes(app, { service: deps.service, routing: deps.routing });
  for (const plugin of deps.plugins ?? []) plugin(app);
  return app;
}
