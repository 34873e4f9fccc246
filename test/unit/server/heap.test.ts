import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, heapGrowthFlag } from '../../../src/server/heap.js';

describe('heapGrowthFlag', () => {
  it('sets the growing factor when node was started without one', () => {
    expect(heapGrowthFlag([])).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--cpu-prof', '--max-old-space-size=512'])).toBe('--heap-growing-percent=200');
  });

  it("leaves the operator's own value alone, in either spelling V8 accepts", () => {
    expect(heapGrowthFlag(['--heap-growing-percent=50'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap_growing_percent=50'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap-growing-percent', '50'])).toBeUndefined();
  });
});
