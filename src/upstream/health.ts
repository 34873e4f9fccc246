// Per-endpoint circuit: consecutive transport failures or 5xx open it for a cooldown (doubling, capped);
// an open endpoint is tried only after the healthy ones, and a background probe (GET /v2/) closes it again.
// 404 and auth failures say nothing about an endpoint's health and are not counted.
import type { Logger } from 'pino';
import type { HealthConfig } from '../config/schema.js';

export type HealthState = 'up' | 'down';

export class EndpointHealth {
  private failures = 0;
  private cooldownMs: number;
  private downSince = 0;
  private nextProbeAt = 0;
  state: HealthState = 'up';
  lastError: string | undefined;

  constructor(
    readonly name: string,
    private readonly cfg: HealthConfig,
    private readonly log: Logger,
    private readonly onChange?: (name: string, state: HealthState) => void,
  ) {
    this.cooldownMs = cfg.cooldownMs;
  }

  get isDown(): boolean {
    return this.state === 'down';
  }

  recordSuccess(): void {
    this.failures = 0;
    this.cooldownMs = this.cfg.cooldownMs;
    if (this.state === 'down') {
      this.state = 'up';
      this.log.warn({ endpoint: this.name, downForMs: Date.now() - this.downSince }, 'endpoint is healthy again');
      this.onChange?.(this.name, 'up');
    }
  }

  recordFailure(reason: string): void {
    this.lastError = reason;
    this.failures++;
    if (this.state === 'up' && this.failures >= this.cfg.failureThreshold) {
      this.state = 'down';
      this.downSince = Date.now();
      this.nextProbeAt = this.downSince + this.cooldownMs;
      this.log.warn({ endpoint: this.name, reason, cooldownMs: this.cooldownMs }, 'endpoint marked down; trying it last until a probe succeeds');
      this.onChange?.(this.name, 'down');
    }
  }

  /** Due for a probe: down, and its cooldown has passed. */
  probeDue(now = Date.now()): boolean {
    return this.state === 'down' && now >= this.nextProbeAt;
  }

  /** A failed probe doubles the cooldown, up to the cap. */
  probeFailed(reason: string): void {
    this.lastError = reason;
    this.cooldownMs = Math.min(this.cooldownMs * 2, this.cfg.maxCooldownMs);
    this.nextProbeAt = Date.now() + this.cooldownMs;
  }
}
