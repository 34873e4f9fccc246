// One upstream request shared by every client that asks for the same thing at once. It runs with its own
// AbortSignal, aborted only when every client waiting for it has gone: a client going away only detaches itself.

interface Running<T> { promise: Promise<T>; waiting: number; abort: AbortController }

export class SharedRequests<T> {
  private readonly running = new Map<string, Running<T>>();

  get size(): number {
    return this.running.size;
  }

  /** Clients waiting for any running request. */
  get waiting(): number {
    let n = 0;
    for (const op of this.running.values()) n += op.waiting;
    return n;
  }

  run(key: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let op = this.running.get(key);
    if (!op) {
      const abort = new AbortController();
      const created: Running<T> = { waiting: 0, abort, promise: Promise.resolve().then(() => fn(abort.signal)) };
      created.promise.then(() => this.end(key, created), () => this.end(key, created));
      this.running.set(key, created);
      op = created;
    }
    const joined = op;
    joined.waiting++;
    if (!signal) return joined.promise.finally(() => { joined.waiting--; });
    return new Promise<T>((resolve, reject) => {
      let detached = false;
      const onAbort = () => {
        detached = true;
        joined.waiting--;
        if (joined.waiting === 0) {
          // Nobody is left to receive the answer: stop the upstream request and let the next client start afresh.
          this.end(key, joined);
          joined.abort.abort(signal.reason);
        }
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      joined.promise.then(
        (v) => { if (!detached) { signal.removeEventListener('abort', onAbort); joined.waiting--; resolve(v); } },
        (e: unknown) => { if (!detached) { signal.removeEventListener('abort', onAbort); joined.waiting--; reject(e); } },
      );
    });
  }

  private end(key: string, op: Running<T>): void {
    if (this.running.get(key) === op) this.running.delete(key);
  }
}
