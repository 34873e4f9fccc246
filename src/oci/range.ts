// Blob byte ranges: the client's Range header parsed once by the route, and one planner that decides, from the
// method, that range and the blob's size, what the answer is. Warm (store) and cold (fill) blobs use the same plan.

/** A single `bytes=` range as the client wrote it: `start-end`, `start-` (open-ended) or `-suffix`. */
export interface ByteRange { start: number; end?: number; suffix?: number }

/**
 * What a blob request is answered with. `start`/`end` are inclusive byte offsets; a `full` plan of an empty blob
 * has end = -1 (no bytes). `partial` answers 206 even when the range covers the whole blob.
 */
export type RangePlan =
  | { kind: 'head' }
  | { kind: 'full'; start: 0; end: number }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/** Bytes a full or partial plan sends. */
export function planLength(plan: { start: number; end: number }): number {
  return plan.end - plan.start + 1;
}

/** The one place that turns (method, Range, size) into an answer; see RangePlan. */
export function planRange(method: 'GET' | 'HEAD', range: ByteRange | undefined, size: number): RangePlan {
  if (method === 'HEAD') return { kind: 'head' };
  if (!range) return { kind: 'full', start: 0, end: size - 1 };
  // RFC 9110 14.1.2: a suffix of 0, or any range of an empty blob, selects nothing.
  if (range.suffix !== undefined) {
    if (range.suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  if (range.start >= size) return { kind: 'unsatisfiable' };
  const end = range.end === undefined ? size - 1 : Math.min(range.end, size - 1);
  if (end < range.start) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start: range.start, end };
}

/** Parses a single `bytes=` range; multi-range and malformed headers are ignored (RFC 9110 allows that). */
export function parseRange(header: string | undefined): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') return { start: 0, suffix: Number(b) };
  const start = Number(a);
  if (b !== '' && Number(b) < start) return undefined;
  return b === '' ? { start } : { start, end: Number(b) };
}

/** The Range header that parseRange reads back as `range` (forwarding a client's range). */
export function rangeHeader(range: ByteRange): string {
  if (range.suffix !== undefined) return `bytes=-${range.suffix}`;
  return `bytes=${range.start}-${range.end ?? ''}`;
}
