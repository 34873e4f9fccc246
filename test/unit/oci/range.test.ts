// Blob ranges: the Range header parsed once, and one planner deciding head | full | partial | unsatisfiable from
// method, range and size, for warm and cold blobs alike.
import { describe, expect, it } from 'vitest';
import { parseRange, planLength, planRange, rangeHeader, type ByteRange, type RangePlan } from '../../../src/oci/range.js';

describe('parseRange', () => {
  it.each([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=100-', { start: 100 }],
    ['bytes=-500', { start: 0, suffix: 500 }],
    ['bytes=-0', { start: 0, suffix: 0 }],
    [' bytes=5-5 ', { start: 5, end: 5 }],
  ] as [string, ByteRange][])('%j → %j', (header, range) => {
    expect(parseRange(header)).toEqual(range);
  });

  it.each([undefined, '', 'bytes=-', 'bytes=9-3', 'items=0-1', 'bytes=0-1,5-6', 'bytes=a-b', 'bytes 0-1'])('ignores %j', (h) => {
    expect(parseRange(h)).toBeUndefined();
  });
});

describe('planRange', () => {
  const size = 1000;
  it.each([
    // method, Range header, size → plan
    ['HEAD', undefined, size, { kind: 'head' }],
    ['HEAD', 'bytes=0-9', size, { kind: 'head' }],
    ['GET', undefined, size, { kind: 'full', start: 0, end: 999 }],
    ['GET', undefined, 0, { kind: 'full', start: 0, end: -1 }],
    ['GET', 'bytes=0-99', size, { kind: 'partial', start: 0, end: 99 }],
    ['GET', 'bytes=0-', size, { kind: 'partial', start: 0, end: 999 }],
    ['GET', 'bytes=10-', size, { kind: 'partial', start: 10, end: 999 }],
    ['GET', 'bytes=999-', size, { kind: 'partial', start: 999, end: 999 }],
    ['GET', 'bytes=900-5000', size, { kind: 'partial', start: 900, end: 999 }],
    ['GET', 'bytes=-100', size, { kind: 'partial', start: 900, end: 999 }],
    ['GET', 'bytes=-5000', size, { kind: 'partial', start: 0, end: 999 }],
    ['GET', 'bytes=-1', 1, { kind: 'partial', start: 0, end: 0 }],
    ['GET', 'bytes=1000-', size, { kind: 'unsatisfiable' }],
    ['GET', 'bytes=5000-6000', size, { kind: 'unsatisfiable' }],
    ['GET', 'bytes=-0', size, { kind: 'unsatisfiable' }],
    ['GET', 'bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['GET', 'bytes=-10', 0, { kind: 'unsatisfiable' }],
  ] as ['GET' | 'HEAD', string | undefined, number, RangePlan][])('%s Range %j of %i bytes → %j', (method, header, blobSize, plan) => {
    expect(planRange(method, parseRange(header), blobSize)).toEqual(plan);
  });

  it('a full or partial plan sends end - start + 1 bytes; an empty blob sends none', () => {
    expect(planLength({ start: 900, end: 999 })).toBe(100);
    expect(planLength({ start: 0, end: -1 })).toBe(0);
  });
});

describe('rangeHeader', () => {
  it('writes the header parseRange reads back as the same range (a replica forwarding a client\'s Range)', () => {
    for (const header of ['bytes=0-0', 'bytes=5-', 'bytes=10-19', 'bytes=-7']) {
      const range = parseRange(header)!;
      expect(rangeHeader(range)).toBe(header);
      expect(parseRange(rangeHeader(range))).toEqual(range);
    }
  });
});
