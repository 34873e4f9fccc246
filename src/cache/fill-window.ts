// The tail of a running fill, kept in memory as the chunks arrived, so clients following the fill get them in the
// tick they arrive — before they reach the disk — and without a copy or a file read.

export class FillWindow {
  private chunks: Buffer[] = [];
  /** Blob offset of chunks[0]. */
  private start = 0;
  private end = 0;
  private bytes = 0;

  /** `limit`: bytes kept once they are on disk; bytes not yet written are always kept (readers have no other copy). */
  constructor(private readonly limit: number) {}

  /** Bytes held in memory now. */
  get held(): number {
    return this.bytes;
  }

  /** Appends the chunk that starts at `at` (the window restarts there if it does not follow on). */
  push(at: number, chunk: Buffer): void {
    if (at !== this.end) this.clear(at);
    this.chunks.push(chunk);
    this.end += chunk.length;
    this.bytes += chunk.length;
  }

  /** Drops the oldest chunks beyond the limit, but only those wholly below `written` (already on disk). */
  trim(written: number): void {
    while (this.bytes > this.limit && this.chunks.length > 1) {
      const first = this.chunks[0] as Buffer;
      if (this.start + first.length > written) return;
      this.chunks.shift();
      this.start += first.length;
      this.bytes -= first.length;
    }
  }

  /** Forgets everything (the fill ended: readers read the file), starting again at `at`. */
  clear(at = this.end): void {
    this.chunks = [];
    this.start = at;
    this.end = at;
    this.bytes = 0;
  }

  /**
   * Up to `length` bytes at `position` without copying, or undefined when they are not held. Followers read near
   * the tail, so the search runs from the newest chunk back.
   */
  peek(position: number, length: number): Buffer | undefined {
    if (position < this.start || position >= this.end) return undefined;
    let at = this.end;
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const chunk = this.chunks[i] as Buffer;
      at -= chunk.length;
      if (position >= at) {
        const from = position - at;
        return from === 0 && chunk.length <= length ? chunk : chunk.subarray(from, Math.min(chunk.length, from + length));
      }
    }
    return undefined;
  }
}
