// AccessTimes: one write per entry per period, the latest access written at the period's end or at shutdown with
// the time it happened (so the order on disk is the order of use), nothing kept for entries that left the cache.
import { afterEach, describe, expect, it } from 'vitest';
import { AccessTimes, type AccessTimeWriter } from '../../../src/cache/access-times.js';

const PERIOD = 60_000;

class RecordingWriter implements AccessTimeWriter {
  writes: [string, number][] = [];
  async touch(id: string, at: Date): Promise<void> { this.writes.push([id, at.getTime()]); }
}

let open: AccessTimes<'blob' | 'manifest'>[] = [];
afterEach(async () => { await Promise.all(open.map((a) => a.close())); open = []; });

function setup() {
  let t = 1_000_000;
  const writers = { blob: new RecordingWriter(), manifest: new RecordingWriter() };
  const times = new AccessTimes(writers, () => t, undefined, PERIOD);
  open.push(times);
  return { times, blobs: writers.blob, manifests: writers.manifest, advance: (ms: number) => { t += ms; } };
}

describe('AccessTimes', () => {
  it('writes the first access at once and gathers the rest of the period into one write of the latest', async () => {
    const { times, blobs, advance } = setup();
    times.record('blob', 'a');
    expect(blobs.writes).toEqual([['a', 1_000_000]]);
    for (let i = 0; i < 100; i++) { advance(100); times.record('blob', 'a'); }
    expect(blobs.writes).toHaveLength(1);
    await times.flush();
    expect(blobs.writes).toEqual([['a', 1_000_000], ['a', 1_010_000]]);
    // Nothing new since: the next flush writes nothing.
    await times.flush();
    expect(blobs.writes).toHaveLength(2);
  });

  it('A, B, A, B, A within a period: at shutdown A is written later than B, as it was used', async () => {
    const { times, blobs, advance } = setup();
    for (const id of ['a', 'b', 'a', 'b', 'a']) { times.record('blob', id); advance(10); }
    await times.close();
    const last = new Map(blobs.writes);
    expect(last.get('a')! > last.get('b')!).toBe(true);
    // Two writes each, whatever the order of the writes at shutdown.
    expect([...blobs.writes].sort((x, y) => x[1] - y[1])).toEqual([['a', 1_000_000], ['b', 1_000_010], ['b', 1_000_030], ['a', 1_000_040]]);
  });

  it('an entry quiet for a whole period is written at once again on its next use', async () => {
    const { times, blobs, advance } = setup();
    times.record('blob', 'a');
    advance(PERIOD);
    await times.flush();
    advance(1);
    times.record('blob', 'a');
    expect(blobs.writes).toEqual([['a', 1_000_000], ['a', 1_000_000 + PERIOD + 1]]);
  });

  it('keeps kinds apart and writes nothing for an entry forgotten (evicted) before its write was due', async () => {
    const { times, blobs, manifests, advance } = setup();
    times.record('blob', 'x');
    times.record('manifest', 'x');
    advance(5);
    times.record('blob', 'x');
    times.record('manifest', 'x');
    times.forget('blob', 'x');
    await times.flush();
    expect(blobs.writes).toEqual([['x', 1_000_000]]);
    expect(manifests.writes).toEqual([['x', 1_000_000], ['x', 1_000_005]]);
  });
});
