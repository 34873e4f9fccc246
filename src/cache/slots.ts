// A counting semaphore: at most n holders at once, the rest wait in arrival order.
export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Resolves with a release function once a slot is ours. */
  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }

  get inUse(): number {
    return this.size - this.free;
  }

  /** Takers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }
}
