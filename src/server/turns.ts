// Registry requests take turns of at most TURN_BUDGET_MS per event-loop iteration, so /healthz and /metrics are
// answered within about one turn however saturated the process is. Node reads every ready socket in one poll
// phase; if each request were handled there, hundreds of keep-alive clients would make that phase hundreds of
// requests long, and a kubelet probe arriving meanwhile would wait for all of them (and kill a busy but healthy
// pod). Instead a registry request is parsed there and handled in the check phase, oldest first, until the turn's
// time is used up; the rest wait for the next iteration, after the loop has polled again and answered the probes.
// Unloaded, a request waits for one setImmediate.

/** Time a turn may spend starting registry requests before the loop polls again. */
export const TURN_BUDGET_MS = 8;

export class Turns {
  private readonly waiters: (() => void)[] = [];
  private head = 0;
  /** When this iteration's turn began; undefined before its first step. */
  private turnStart: number | undefined;
  /** The turn is used up: every step left in this iteration moves to the next one. */
  private spent = false;

  /** Resolves when this request's turn comes. */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      // One immediate per waiter: microtasks (the request's synchronous part) run between immediates, so each
      // step sees the time the ones before it took.
      setImmediate(this.step);
    });
  }

  /** Requests waiting for a turn now. */
  get waiting(): number {
    return this.waiters.length - this.head;
  }

  private readonly step = (): void => {
    if (this.spent) { setImmediate(this.step); return; }
    const now = performance.now();
    this.turnStart ??= now;
    if (now - this.turnStart >= TURN_BUDGET_MS) {
      this.spent = true;
      // Queued before the steps moved after it, so it runs first in the next iteration's check phase.
      setImmediate(this.nextTurn);
      setImmediate(this.step);
      return;
    }
    const resolve = this.waiters[this.head++]!;
    if (this.head === this.waiters.length) {
      this.waiters.length = 0;
      this.head = 0;
      this.turnStart = undefined;
    } else if (this.head >= 1024) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
    resolve();
  };

  private readonly nextTurn = (): void => {
    this.spent = false;
    this.turnStart = undefined;
  };
}
