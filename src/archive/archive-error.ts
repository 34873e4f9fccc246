// What went wrong in an image archive, naming the entry (tar member) it concerns whenever there is one.
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  constructor(readonly entry: string | undefined, readonly problem: string, opts: { cause?: unknown } = {}) {
    super(entry === undefined ? problem : `${entry}: ${problem}`, opts);
  }
}
