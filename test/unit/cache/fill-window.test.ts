// FillWindow: chunks handed out without copying, trimmed to its limit only below what is on disk, emptied when the
// fill ends.
import { describe, expect, it } from 'vitest';
import { FillWindow } from '../../../src/cache/fill-window.js';

const chunk = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('FillWindow', () => {
  it('peeks across chunks without copying, and answers only for bytes it holds', () => {
    const w = new FillWindow(1000);
    const [a, b] = [chunk(100, 1), chunk(50, 2)];
    w.push(0, a);
    w.push(100, b);
    expect(w.peek(0, 100)).toBe(a);
    const part = w.peek(120, 1000)!;
    expect([part.length, part[0], part.buffer === b.buffer]).toEqual([30, 2, true]);
    expect(w.peek(90, 50)!.length).toBe(10);
    expect(w.peek(150, 1)).toBeUndefined();
    expect(w.held).toBe(150);
  });

  it('trims to its limit, but never a chunk that is not wholly on disk', () => {
    const w = new FillWindow(100);
    for (let i = 0; i < 5; i++) w.push(i * 60, chunk(60, i));
    // Nothing on disk yet: all 300 bytes stay, past the limit.
    w.trim(0);
    expect(w.held).toBe(300);
    expect(w.peek(0, 1)![0]).toBe(0);
    // 130 bytes on disk: the first two chunks (0..119) may go; the third (120..179) is only partly written.
    w.trim(130);
    expect([w.held, w.peek(119, 1), w.peek(120, 1)![0]]).toEqual([180, undefined, 2]);
    w.trim(300);
    expect([w.held, w.peek(240, 1)![0]]).toEqual([60, 4]);
  });

  it('clear() lets go of everything; a push that does not follow on starts afresh', () => {
    const w = new FillWindow(1000);
    w.push(0, chunk(10, 1));
    w.clear();
    expect([w.held, w.peek(0, 1)]).toEqual([0, undefined]);
    w.push(500, chunk(10, 7));
    expect([w.held, w.peek(505, 1)![0], w.peek(5, 1)]).toEqual([10, 7, undefined]);
  });
});
