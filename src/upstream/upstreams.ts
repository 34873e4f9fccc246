// Every configured mirror, with one client and one health record per endpoint (shared when several mirrors
// list the same endpoint), and the background probe that closes open circuits.
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { defaultEndpoint, normaliseEndpoint, type Endpoint } from '../config/endpoints.js';
import { EndpointClient } from './client.js';
import { EndpointHealth, type HealthState } from './health.js';
import { MirrorUpstream, errorText, type UpstreamEndpoint } from './fallthrough.js';
import { EndpointRateLimit, type RateLimitSnapshot } from './rate-limit.js';

export interface UpstreamEvents {
  onHealthChange?: (endpoint: string, state: HealthState) => void;
  /** The clock rate-limit windows and Retry-After are judged by (tests move it instead of sleeping). */
  now?: () => number;
}

export class Upstreams {
  private readonly byEndpoint = new Map<string, Omit<UpstreamEndpoint, 'rewrites'>>();
  private readonly mirrors = new Map<string, MirrorUpstream>();
  private readonly redirectAgent: Agent;
  private readonly probeTimer: NodeJS.Timeout;
  private probing = false;

  constructor(private readonly config: Config, private readonly log: Logger, readonly via: string, private readonly events: UpstreamEvents = {}) {
    const t = config.upstream;
    this.redirectAgent = new Agent({ connect: { timeout: t.connectTimeoutMs }, headersTimeout: t.responseTimeoutMs, bodyTimeout: t.readTimeoutMs });
    for (const registry of Object.keys(config.mirrors)) if (registry !== '*') this.mirrorFor(registry);
    this.probeTimer = setInterval(() => void this.probe(), config.upstream.health.probeIntervalMs);
    this.probeTimer.unref();
  }

  /** The mirror for a registry: its own entry, else "*", else undefined (never an open proxy). */
  resolve(registry: string): MirrorUpstream | undefined {
    if (!this.config.mirrors[registry] && !this.config.mirrors['*']) return undefined;
    return this.mirrorFor(registry);
  }

  /** Registries that have their own entry (not "*"). */
  configured(): string[] {
    return Object.keys(this.config.mirrors).filter((r) => r !== '*');
  }

  isConfigured(registry: string): boolean {
    return registry in this.config.mirrors;
  }

  allEndpoints(): UpstreamEndpoint[] {
    return [...this.byEndpoint.values()].map((e) => ({ ...e, rewrites: false }));
  }

  /** Rate limits of the endpoints that announced one (or sent a Retry-After): for /metrics and the status page. */
  rateLimits(): RateLimitSnapshot[] {
    return [...this.byEndpoint.values()].flatMap((e) => (e.rateLimit?.known ? [e.rateLimit.snapshot()] : []));
  }

  private mirrorFor(registry: string): MirrorUpstream {
    let mirror = this.mirrors.get(registry);
    if (mirror) return mirror;
    const entry = this.config.mirrors[registry] ?? this.config.mirrors['*'];
    const listed = (entry?.endpoint ?? []).map((raw) => normaliseEndpoint(raw));
    const endpoints: UpstreamEndpoint[] = listed.map((e) => ({ ...this.endpointFor(e), rewrites: true }));
    // An empty list means the registry's own endpoint; appendDefaultEndpoint adds it after the listed ones, like K3s.
    if (listed.length === 0 || this.config.upstream.appendDefaultEndpoint) {
      const own = defaultEndpoint(registry);
      if (!listed.some((e) => e.origin === own.origin && e.apiRoot === own.apiRoot)) endpoints.push({ ...this.endpointFor(own), rewrites: false });
    }
    mirror = new MirrorUpstream(registry, endpoints, entry?.rewrite ?? {});
    this.mirrors.set(registry, mirror);
    return mirror;
  }

  private endpointFor(e: Endpoint): Omit<UpstreamEndpoint, 'rewrites'> {
    const key = `${e.origin}${e.apiRoot}`;
    let found = this.byEndpoint.get(key);
    if (!found) {
      const hostConfig = this.config.configs[e.host] ?? this.config.configs['*'];
      const client = new EndpointClient(e, hostConfig, this.config.upstream, this.via, this.redirectAgent);
      const health = new EndpointHealth(client.name, this.config.upstream.health, this.log, this.events.onHealthChange);
      const rateLimit = new EndpointRateLimit(client.name, this.config.upstream.rateLimitThreshold, this.log, this.events.now);
      found = { client, health, rateLimit };
      this.byEndpoint.set(key, found);
    }
    return found;
  }

  /** GET <apiRoot>/ on every endpoint whose cooldown has passed; any answer below 500 (401 included) means alive. */
  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all([...this.byEndpoint.values()].filter((e) => e.health.probeDue()).map(async ({ client, health }) => {
        try {
          const status = await client.ping(AbortSignal.timeout(this.config.upstream.connectTimeoutMs + this.config.upstream.responseTimeoutMs));
          if (status < 500) health.recordSuccess();
          else health.probeFailed(`HTTP ${status}`);
        } catch (err) {
          health.probeFailed(errorText(err));
        }
      }));
    } finally {
      this.probing = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.probeTimer);
    await Promise.allSettled([...this.byEndpoint.values()].map((e) => e.client.close()));
    await this.redirectAgent.close().catch(() => undefined);
  }
}
