// Every configured mirror, with one client and one health record per endpoint (shared when several mirrors list the
// same endpoint), the mirrors made on demand for registries a client names under "*" (bounded, their connections
// closed on eviction), and the background probe that closes open circuits. Registry and host names are looked up
// in Maps built from the config's own keys: "constructor" or "__proto__" are names like any other.
import { LRUCache } from 'lru-cache';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { Config, MirrorEntry, RegistryConfigEntry } from '../config/schema.js';
import { defaultEndpoint, normaliseEndpoint, type Endpoint } from '../config/endpoints.js';
import { EndpointClient } from './client.js';
import { guardedConnector, type NetworkHooks } from './connector.js';
import { EndpointHealth, type HealthState } from './health.js';
import { MirrorUpstream, errorText, type UpstreamEndpoint } from './fallthrough.js';
import { EndpointRateLimit, type RateLimitSnapshot } from './rate-limit.js';
import { wildcardRefusal } from './wildcard.js';

export interface UpstreamEvents {
  onHealthChange?: (endpoint: string, state: HealthState) => void;
  /** The clock rate-limit windows and Retry-After are judged by (tests move it instead of sleeping). */
  now?: () => number;
}

export interface UpstreamOptions {
  events?: UpstreamEvents;
  network?: NetworkHooks;
}

/** Registries served through "*" at once; the least recently used beyond this is dropped (and reopened on demand). */
export const MAX_WILDCARD_REGISTRIES = 500;

type SharedEndpoint = Omit<UpstreamEndpoint, 'rewrites'>;

interface WildcardMirror {
  mirror: MirrorUpstream;
  /** The registry's own endpoint when no configured mirror lists it: owned by this entry, closed with it. */
  owned?: SharedEndpoint;
}

export class Upstreams {
  private readonly entries: ReadonlyMap<string, MirrorEntry>;
  private readonly wildcard: MirrorEntry | undefined;
  private readonly hostConfigs: ReadonlyMap<string, RegistryConfigEntry>;
  /** Endpoints the config names (listed, or a configured registry's own): config-bounded. */
  private readonly explicit = new Map<string, SharedEndpoint>();
  private readonly mirrors = new Map<string, MirrorUpstream>();
  private readonly wildcardMirrors: LRUCache<string, WildcardMirror>;
  private readonly redirectAgents: { publicOnly: Agent; any: Agent };
  private readonly network: NetworkHooks;
  private readonly events: UpstreamEvents;
  private readonly probeTimer: NodeJS.Timeout;
  private probing = false;
  private explicitNames: Set<string> | undefined;

  constructor(private readonly config: Config, private readonly log: Logger, readonly via: string, opts: UpstreamOptions = {}) {
    this.network = opts.network ?? {};
    this.events = opts.events ?? {};
    this.entries = new Map(Object.entries(config.mirrors).filter(([r]) => r !== '*'));
    this.wildcard = Object.hasOwn(config.mirrors, '*') ? config.mirrors['*'] : undefined;
    this.hostConfigs = new Map(Object.entries(config.configs));
    const t = config.upstream;
    const agent = (allowPrivate: boolean) => new Agent({
      headersTimeout: t.responseTimeoutMs, bodyTimeout: t.readTimeoutMs,
      connect: guardedConnector({ timeout: t.connectTimeoutMs }, { hooks: this.network, allowPrivate: () => allowPrivate || t.allowPrivateNetworks }),
    });
    this.redirectAgents = { publicOnly: agent(false), any: agent(true) };
    this.wildcardMirrors = new LRUCache<string, WildcardMirror>({
      max: MAX_WILDCARD_REGISTRIES,
      dispose: (w) => { if (w.owned) void w.owned.client.retire(); },
    });
    for (const [registry, entry] of this.entries) this.mirrors.set(registry, this.build(registry, entry, true).mirror);
    for (const raw of this.wildcard?.endpoint ?? []) this.explicitEndpoint(normaliseEndpoint(raw));
    this.probeTimer = setInterval(() => void this.probe(), config.upstream.health.probeIntervalMs);
    this.probeTimer.unref();
  }

  /**
   * The mirror for a registry: its own entry, else "*" when the name passes the wildcard policy (checked here,
   * before any DNS query), else undefined (never an open proxy).
   */
  resolve(registry: string): MirrorUpstream | undefined {
    const own = this.mirrors.get(registry);
    if (own) return own;
    if (!this.wildcard) return undefined;
    const cached = this.wildcardMirrors.get(registry);
    if (cached) return cached.mirror;
    const refused = wildcardRefusal(registry, this.config.upstream.allowPrivateNetworks);
    if (refused) {
      this.log.debug({ registry, refused }, 'registry refused under "*"');
      return undefined;
    }
    const made = this.build(registry, this.wildcard, false);
    this.wildcardMirrors.set(registry, made);
    return made.mirror;
  }

  /** Registries that have their own entry (not "*"). */
  configured(): string[] {
    return [...this.entries.keys()];
  }

  isConfigured(registry: string): boolean {
    return this.entries.has(registry);
  }

  /** Whether an endpoint name (EndpointClient.name) is one the config names: bounded, so fit for a metric label. */
  isConfiguredEndpoint(name: string): boolean {
    this.explicitNames ??= new Set([...this.explicit.values()].map((e) => e.client.name));
    return this.explicitNames.has(name);
  }

  /** Endpoints the config names (never the ones "*" opened for a client): what metrics list. */
  allEndpoints(): UpstreamEndpoint[] {
    return [...this.explicit.values()].map((e) => ({ ...e, rewrites: false }));
  }

  /** Rate limits of the endpoints the config names that announced one (or sent a Retry-After): for /metrics and the status page. */
  rateLimits(): RateLimitSnapshot[] {
    return [...this.explicit.values()].flatMap((e) => (e.rateLimit?.known ? [e.rateLimit.snapshot()] : []));
  }

  private build(registry: string, entry: MirrorEntry, configured: boolean): WildcardMirror {
    const listed = entry.endpoint.map((raw) => normaliseEndpoint(raw));
    const endpoints: UpstreamEndpoint[] = listed.map((e) => ({ ...this.explicitEndpoint(e), rewrites: true }));
    let owned: SharedEndpoint | undefined;
    // An empty list means the registry's own endpoint; appendDefaultEndpoint adds it after the listed ones, like K3s.
    if (listed.length === 0 || this.config.upstream.appendDefaultEndpoint) {
      const own = defaultEndpoint(registry);
      if (!listed.some((e) => e.origin === own.origin && e.apiRoot === own.apiRoot)) {
        const shared = configured ? this.explicitEndpoint(own) : this.explicit.get(keyOf(own));
        owned = shared ? undefined : this.makeEndpoint(own, false);
        endpoints.push({ ...(shared ?? owned as SharedEndpoint), rewrites: false });
      }
    }
    return { mirror: new MirrorUpstream(registry, endpoints, entry.rewrite), ...(owned ? { owned } : {}) };
  }

  private explicitEndpoint(e: Endpoint): SharedEndpoint {
    const key = keyOf(e);
    let found = this.explicit.get(key);
    if (!found) {
      found = this.makeEndpoint(e, true);
      this.explicit.set(key, found);
    }
    return found;
  }

  private makeEndpoint(e: Endpoint, explicit: boolean): SharedEndpoint {
    // configs."*" covers the endpoints the config names; for a host a client named under "*" it lends its TLS
    // settings but never its credentials (only an entry keyed by that very host does).
    const wildcard = this.hostConfigs.get('*');
    const lent = explicit ? wildcard : wildcard?.tls ? { tls: wildcard.tls } : undefined;
    const hostConfig = this.hostConfigs.get(e.host) ?? lent;
    const client = new EndpointClient(e, hostConfig, this.config.upstream, this.via, {
      hooks: this.network, allowPrivateNetworks: this.config.upstream.allowPrivateNetworks, explicit, redirectAgents: this.redirectAgents,
    });
    const u = this.config.upstream;
    const health = new EndpointHealth(client.name, u.health, this.log, this.events.onHealthChange, () => this.ping(client));
    const rateLimit = new EndpointRateLimit(client.name, u.rateLimitThreshold, this.log, this.events.now);
    return { client, health, rateLimit };
  }

  /** GET <apiRoot>/ within a connect and a response timeout: the check a 5xx triggers and the background probe alike. */
  private ping(client: EndpointClient): Promise<number> {
    const u = this.config.upstream;
    return client.ping(AbortSignal.timeout(u.connectTimeoutMs + u.responseTimeoutMs));
  }

  private everyEndpoint(): SharedEndpoint[] {
    const owned = [...this.wildcardMirrors.values()].flatMap((w) => (w.owned ? [w.owned] : []));
    return [...this.explicit.values(), ...owned];
  }

  /** GET <apiRoot>/ on every endpoint whose cooldown has passed; any answer below 500 (401 included) means alive. */
  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(this.everyEndpoint().filter((e) => e.health.probeDue()).map(async ({ client, health }) => {
        try {
          const status = await this.ping(client);
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
    await Promise.all(this.everyEndpoint().map((e) => e.client.close()));
    this.wildcardMirrors.clear();
    await Promise.all([this.redirectAgents.publicOnly.close(), this.redirectAgents.any.close()]);
  }
}

function keyOf(e: Endpoint): string {
  return `${e.origin}${e.apiRoot}`;
}
