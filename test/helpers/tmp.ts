import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cleanups = new Set<() => void>();
const removers = new Map<string, () => void>();

/**
 * Runs `fn` (synchronously) when the process ends: on 'exit', and on SIGTERM/SIGINT/SIGHUP, which is how vitest
 * ends its fork workers and which skips 'exit' handlers by default. Returns a function that unregisters it.
 */
export function atProcessExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function runCleanups(): void {
  for (const fn of cleanups) {
    try { fn(); } catch { /* best effort: the process is going away */ }
  }
  cleanups.clear();
}

process.once('exit', runCleanups);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  // Re-raise after cleaning up: with our once-listener gone, the default action terminates the process as before.
  process.once(signal, () => { runCleanups(); process.kill(process.pid, signal); });
}

/** A fresh directory under the OS temp dir; removed when the process ends unless removed earlier. */
export function makeTmpDir(prefix = 'ocimirror-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  removers.set(dir, atProcessExit(() => fs.rmSync(dir, { recursive: true, force: true })));
  return dir;
}
export async function removeTmpDir(dir: string): Promise<void> {
  removers.get(dir)?.();
  removers.delete(dir);
  await fs.promises.rm(dir, { recursive: true, force: true });
}
