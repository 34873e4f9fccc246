// SharedRequests: one upstream request for every client asking at once; a client going away only detaches itself,
// and the request is stopped only when nobody is left waiting for it.
import { describe, expect, it } from 'vitest';
import { SharedRequests } from '../../../src/cache/shared-request.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe('SharedRequests', () => {
  it('runs one request for concurrent callers of the same key, and a new one afterwards', async () => {
    const shared = new SharedRequests<number>();
    let calls = 0;
    const gate = deferred<number>();
    const fn = async () => { calls++; return gate.promise; };
    const a = shared.run('k', fn);
    const b = shared.run('k', fn);
    const other = shared.run('other', async () => 7);
    await Promise.resolve();
    expect(calls).toBe(1);
    gate.resolve(42);
    expect(await Promise.all([a, b, other])).toEqual([42, 42, 7]);
    expect(shared.size).toBe(0);
    await shared.run('k', async () => { calls++; return 1; });
    expect(calls).toBe(2);
  });

  it('the first client going away detaches only itself: the request goes on and the others get its answer', async () => {
    const shared = new SharedRequests<string>();
    const gate = deferred<string>();
    let signalSeen: AbortSignal | undefined;
    const fn = async (signal: AbortSignal) => { signalSeen = signal; return gate.promise; };
    const first = new AbortController();
    const second = new AbortController();
    const a = shared.run('k', fn, first.signal);
    const b = shared.run('k', fn, second.signal);
    await Promise.resolve();
    first.abort(new Error('client 1 left'));
    await expect(a).rejects.toThrow('client 1 left');
    expect(signalSeen?.aborted).toBe(false);
    gate.resolve('manifest');
    expect(await b).toBe('manifest');
  });

  it('when every client has gone the request is aborted, and the next client starts a fresh one', async () => {
    const shared = new SharedRequests<string>();
    const signals: AbortSignal[] = [];
    const fn = (signal: AbortSignal) => new Promise<string>((resolve, reject) => {
      signals.push(signal);
      signal.addEventListener('abort', () => reject(signal.reason));
      if (signals.length > 1) resolve('fresh');
    });
    const c1 = new AbortController();
    const c2 = new AbortController();
    const a = shared.run('k', fn, c1.signal);
    const b = shared.run('k', fn, c2.signal);
    await Promise.resolve();
    c1.abort(new Error('gone'));
    c2.abort(new Error('gone too'));
    await expect(a).rejects.toThrow('gone');
    await expect(b).rejects.toThrow('gone too');
    expect(signals[0]?.aborted).toBe(true);
    expect(await shared.run('k', fn)).toBe('fresh');
    expect(signals).toHaveLength(2);
  });

  it('a failure reaches every waiting client', async () => {
    const shared = new SharedRequests<string>();
    const gate = deferred<string>();
    const a = shared.run('k', () => gate.promise, new AbortController().signal);
    const b = shared.run('k', () => gate.promise);
    gate.reject(new Error('upstream 503'));
    await expect(a).rejects.toThrow('upstream 503');
    await expect(b).rejects.toThrow('upstream 503');
  });
});
