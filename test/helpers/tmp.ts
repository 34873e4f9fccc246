import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const created = new Set<string>();

/** A fresh directory under the OS temp dir; removed on process exit unless removed earlier. */
export function makeTmpDir(prefix = 'ocimirror-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.add(dir);
  return dir;
}

export async function removeTmpDir(dir: string): Promise<void> {
  created.delete(dir);
  await fs.promises.rm(dir, { recursive: true, force: true });
}

// Synchronous: 'exit' handlers cannot await. Leftover dirs would fill /tmp across many e2e runs.
process.once('exit', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});
