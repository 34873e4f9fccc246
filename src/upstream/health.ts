// Per-endpoint circuit. Transport failures (connection refused or reset, DNS, TLS, connect timeout) in a row open it
// for a cooldown (doubling, capped); an open endpoint is tried only after the healthy ones, and a background probe
// (GET /v2/) closes it again. A 5xx or response timeout may be caused by what one client asked (Distribution answers
// 500 for a blob digest asked as a manifest), so it makes us probe at once, and only the probe failing opens the
// circuit (which readiness reports). Distinct requests failing in a row (nothing succeeding between) only move the
// endpoint to the back of the line for a cooldown. 404 and auth failures say nothing about health and are not counted.
import type { Logger } from 'pino';
import type { HealthConfig } from '../config/schema.js';

export type HealthState = 'up' | 'down';

/** GET <apiRoot>/ on the endpoint: resolves to the status, rejects on a transport failure. */
export type HealthProbe = () => Promise<number>;

/** Distinct requests failing in a row (5xx, response timeouts) before the endpoint is tried last for a while. */
export const SUSPECT_AFTER = 2;

export class EndpointHealth {
  private failures = 0;
  private cooldownMs: number;
  private downSince = 0;
  private probeAt = 0;
  private checking: Promise<void> | undefined;
  /** Request paths ("/library/x/manifests/y") that failed with a 5xx or a response timeout since the last success. */
  private readonly failedRequests = new Set<string>();
  private suspectUntil = 0;
  state: HealthState = 'up';
  lastError: string | undefined;

  constructor(
    readonly name: string,
    private readonly cfg: HealthConfig,
    private readonly log: Logger,
    private readonly onChange?: (name: string, state: HealthState) => void,
    private readonly probe?: HealthProbe,
  ) {
    this.cooldownMs = cfg.cooldownMs;
  }

  get isDown(): boolean {
    return this.state === 'down';
  }

  /** Down, or failing distinct requests lately: tried after the others (but not reported as down). */
  triedLast(now = Date.now()): boolean {
    return this.isDown || now < this.suspectUntil;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.failedRequests.clear();
    this.suspectUntil = 0;
    this.cooldownMs = this.cfg.cooldownMs;
    if (this.state === 'down') {
      this.state = 'up';
      this.log.warn({ endpoint: this.name, downForMs: Date.now() - this.downSince }, 'endpoint is healthy again');
      this.onChange?.(this.name, 'up');
    }
  }

  /** A failure of the endpoint itself (transport, a body broken off, bytes that fail their digest). */
  recordFailure(reason: string): void {
    this.lastError = reason;
    this.failures++;
    if (this.failures >= this.cfg.failureThreshold) this.markDown(reason);
  }

  /**
   * A 5xx or response timeout for one request: not held against the endpoint unless GET /v2/ fails too (checked
   * now, once at a time). Resolves when that check is done.
   */
  recordRequestFailure(request: string, reason: string): Promise<void> {
    this.lastError = reason;
    if (this.failedRequests.size < SUSPECT_AFTER) this.failedRequests.add(request);
    if (this.failedRequests.size >= SUSPECT_AFTER && Date.now() >= this.suspectUntil) {
      this.suspectUntil = Date.now() + this.cfg.cooldownMs;
      this.log.warn({ endpoint: this.name, reason, forMs: this.cfg.cooldownMs }, `${SUSPECT_AFTER} different requests failed in a row; trying this endpoint last for a while`);
    }
    if (!this.probe || this.isDown) return Promise.resolve();
    this.checking ??= this.probe().then(
      (status) => { if (status >= 500) this.markDown(`${reason}; GET /v2/ answered ${status}`); },
      (err: unknown) => this.markDown(`${reason}; GET /v2/ failed: ${(err as Error).message}`),
    ).finally(() => { this.checking = undefined; });
    return this.checking;
  }

  private markDown(reason: string): void {
    this.lastError = reason;
    if (this.state !== 'up') return;
    this.state = 'down';
    this.downSince = Date.now();
    this.probeAt = this.downSince + this.cooldownMs;
    this.log.warn({ endpoint: this.name, reason, cooldownMs: this.cooldownMs }, 'endpoint marked down; trying it last until a probe succeeds');
    this.onChange?.(this.name, 'down');
  }

  /** When a down endpoint's cooldown ends (it is probed on the next probe tick after it); undefined while up. */
  get nextProbeAt(): number | undefined {
    return this.state === 'down' ? this.probeAt : undefined;
  }

  /** Due for a probe: down, and its cooldown has passed. */
  probeDue(now = Date.now()): boolean {
    return this.state === 'down' && now >= this.probeAt;
  }

  /** A failed probe doubles the cooldown, up to the cap. */
  probeFailed(reason: string): void {
    this.lastError = reason;
    this.cooldownMs = Math.min(this.cooldownMs * 2, this.cfg.maxCooldownMs);
    this.probeAt = Date.now() + this.cooldownMs;
  }
}
