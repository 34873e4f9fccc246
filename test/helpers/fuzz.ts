// How hard the property tests push: a few hundred cases per property in `npm test` (seconds), many more under
// `npm run fuzz` (FUZZ_RUNS=20000). A failure prints fast-check's seed and path, so it can be replayed.
import type { Parameters } from 'fast-check';

export function fuzzRuns(base = 300): Parameters<unknown> {
  const env = Number(process.env.FUZZ_RUNS);
  return { numRuns: Number.isInteger(env) && env > 0 ? env : base };
}
