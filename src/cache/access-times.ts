// Persisted access times, throttled: the LRU order must survive a restart, but a write per cache hit (a utimes,
// which also dirties the inode in the journal) costs more than serving a small blob. The first access of an entry
// in a period is written at once; later ones only remember the time, and the latest is written when the period
// ends or at shutdown — with the time it happened, so the order on disk is the order in memory.

export interface AccessTimeWriter {
  /** Persists that `id` was used at `at`. */
  touch(id: string, at: Date): Promise<void>;
}

/** How long accesses to one entry are gathered into one write. */
export const ACCESS_WRITE_PERIOD_MS = 60_000;

export class AccessTimes<K extends string> {
  /** When each entry's access time was last written, for entries written within the current period only. */
  private written = new Map<string, number>();
  /** Accesses not written yet: the latest time of each. */
  private pending = new Map<string, { kind: K; id: string; at: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly writers: Readonly<Record<K, AccessTimeWriter>>,
    private readonly now: () => number,
    /** A write failed (EACCES, EROFS, EIO): the caller logs it; the access is not retried. */
    private readonly onError: (kind: K, err: unknown) => void = () => undefined,
    private readonly periodMs = ACCESS_WRITE_PERIOD_MS,
  ) {
    this.timer = setInterval(() => void this.flush(), periodMs);
    this.timer.unref();
  }

  /** Records a use: written now if this entry has not been written this period, else when the period ends. */
  record(kind: K, id: string): void {
    const key = `${kind} ${id}`;
    const at = this.now();
    const last = this.written.get(key);
    if (last !== undefined && at - last < this.periodMs) {
      this.pending.set(key, { kind, id, at });
      return;
    }
    this.pending.delete(key);
    this.written.set(key, at);
    this.write(kind, id, at);
  }

  /** The entry is gone from the cache: nothing to write for it any more. */
  forget(kind: K, id: string): void {
    const key = `${kind} ${id}`;
    this.pending.delete(key);
    this.written.delete(key);
  }

  /** Writes every pending access (the period ended, or shutdown); entries quiet for a period are dropped. */
  async flush(): Promise<void> {
    const due = [...this.pending.values()];
    this.pending.clear();
    const now = this.now();
    for (const [key, at] of this.written) if (now - at >= this.periodMs) this.written.delete(key);
    for (const p of due) this.written.set(`${p.kind} ${p.id}`, p.at);
    await Promise.all(due.map((p) => this.write(p.kind, p.id, p.at)));
  }

  private write(kind: K, id: string, at: number): Promise<void> {
    return this.writers[kind].touch(id, new Date(at)).catch((err: unknown) => this.onError(kind, err));
  }

  /** Shutdown: the last accesses are written, and the timer stops. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
