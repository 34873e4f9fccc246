// Prints one plain closing line, "N passed, N failed, N skipped", after vitest's own report.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      // A failed beforeAll leaves a file's tests unrun ("skipped"): in a failed file they count as failed.
      const moduleFailed = m.state() === 'failed';
      let failedHere = 0;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed' || moduleFailed) failedHere++;
        else skipped++;
      }
      // A file that failed with every test passed (an afterAll, an import error): one failure for the file.
      failed += moduleFailed && failedHere === 0 ? 1 : failedHere;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
