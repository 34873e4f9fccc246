// The semaphore behind the S3 store's bound on part buffers and the limit on password checks: at most n holders,
// waiters served in arrival order.
import { describe, expect, it } from 'vitest';
import { Slots } from '../../../src/cache/slots.js';

/** Lets every already-resolvable promise settle (no timers involved, so nothing else can happen meanwhile). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Slots', () => {
  it('hands out n slots, then queues takers in order until a release', async () => {
    const slots = new Slots(2);
    const a = await slots.take();
    const b = await slots.take();
    expect(slots.inUse).toBe(2);
    const order: string[] = [];
    const c = slots.take().then((release) => { order.push('c'); return release; });
    const d = slots.take().then((release) => { order.push('d'); return release; });
    await settle();
    expect(order).toEqual([]);
    a();
    a(); // a second release of the same slot changes nothing
    const releaseC = await c;
    await settle();
    expect(order).toEqual(['c']);
    b();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    releaseC();
    releaseD();
    expect(slots.inUse).toBe(0);
  });
});
