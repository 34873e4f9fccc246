// Per-request facts the access log line reports.
import type { Provenance } from '../oci/service.js';

export interface RequestContext {
  registry?: string;
  /** Repository at that registry ("library/alpine"). */
  repo?: string;
  endpoint?: string;
  attempts?: Provenance['attempts'];
  cache?: 'hit' | 'miss' | 'stale' | 'joined';
  /** Why each endpoint failed, when the request failed as a whole. */
  failed?: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
    /** Aborted when the client goes away, so upstream work started only for it can stop. */
    clientGone: AbortSignal;
  }
}

export function record(ctx: RequestContext, p: Provenance): void {
  if (p.endpoint) ctx.endpoint = p.endpoint;
  if (p.attempts) ctx.attempts = p.attempts;
  if (p.cache) ctx.cache = p.cache;
}
