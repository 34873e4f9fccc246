// The replicas' one connection to Redis, and the answer to "is Redis there?". Commands never queue while Redis is
// away and never wait long for a hung one: they fail at once with RedisUnavailableError, so callers fall back to
// what one replica can do alone (its own single-flight) instead of stalling pulls. The link reconnects by itself
// and says so ('down' / 'up' events, status() for /readyz, one log line per change).
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  readonly code = 'REDIS_UNAVAILABLE';
}

export interface RedisLinkOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. */
  url: string;
  log: Logger;
  /** A command (or a reconnect's ready check) without an answer for this long means Redis is unavailable. */
  commandTimeoutMs?: number;
  /** Longest wait between reconnection attempts. */
  maxReconnectDelayMs?: number;
}

export interface RedisStatus {
  up: boolean;
  /** When the current state began (ms since epoch). */
  since: number;
  /** Why it is down. */
  error?: string;
}

/** Replies that mean "this Redis cannot serve now" rather than "your command is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|BUSY|CLUSTERDOWN)\b/;

export class RedisLink extends EventEmitter {
  readonly client: Redis;
  private isUp = false;
  private since = Date.now();
  private lastError: string | undefined = 'not connected yet';
  private closed = false;
  /** The current outage has been logged (start-up counts as one until the first connection). */
  private reportedDown = false;

  constructor(private readonly opts: RedisLinkOptions) {
    super();
    const timeout = opts.commandTimeoutMs ?? 1000;
    const maxDelay = opts.maxReconnectDelayMs ?? 2000;
    this.client = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeout,
      // A hung Redis (stopped, partitioned) drops the socket, so the link goes down and reconnects.
      socketTimeout: timeout,
      connectTimeout: timeout,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, maxDelay),
    });
    this.client.on('ready', () => this.markUp());
    this.client.on('close', () => this.markDown(this.lastError ?? 'connection closed'));
    // Every failure also closes the connection ('close' above); this only keeps the reason.
    this.client.on('error', (err: Error) => { this.lastError = err.message; });
  }

  get up(): boolean {
    return this.isUp;
  }

  status(): RedisStatus {
    return { up: this.isUp, since: this.since, ...(this.isUp || !this.lastError ? {} : { error: this.lastError }) };
  }

  /** Runs commands; RedisUnavailableError when Redis cannot answer (down, hung, loading). Other errors pass. */
  async run<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    if (!this.isUp) throw new RedisUnavailableError(`Redis is unavailable: ${this.lastError ?? 'not connected'}`);
    try {
      return await fn(this.client);
    } catch (err) {
      const e = err as Error;
      if (e.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(e.message)) throw err;
      this.lastError = e.message;
      throw new RedisUnavailableError(`Redis is unavailable: ${e.message}`, { cause: err });
    }
  }

  /** Resolves once connected (start-up, tests); rejects after timeoutMs. */
  whenUp(timeoutMs: number): Promise<void> {
    if (this.isUp) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.off('up', onUp); reject(new RedisUnavailableError(`Redis not reachable after ${timeoutMs} ms: ${this.lastError}`)); }, timeoutMs);
      const onUp = () => { clearTimeout(timer); resolve(); };
      this.once('up', onUp);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.isUp = false;
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private markUp(): void {
    if (this.isUp) return;
    this.isUp = true;
    this.since = Date.now();
    this.lastError = undefined;
    this.reportedDown = false;
    this.opts.log.info({ redis: redactUrl(this.opts.url) }, 'Redis connected; coordinating with the other replicas');
    this.emit('up');
  }

  private markDown(reason: string): void {
    if (this.closed || (!this.isUp && this.reportedDown)) return;
    this.isUp = false;
    this.reportedDown = true;
    this.since = Date.now();
    this.lastError = reason;
    this.opts.log.warn({ redis: redactUrl(this.opts.url), reason }, 'Redis unavailable; each replica fetches on its own until it is back');
    this.emit('down', reason);
  }
}

/** The URL without its password, for logs and /readyz. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return '[unparsable URL]';
  }
}
