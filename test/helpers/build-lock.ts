// One podman image build (or image removal) at a time on this machine, across test processes: ops-image and
// ops-compose build the same Dockerfile, and one suite's `rmi -f` in its clean-up removed layers the other's build
// had mounted ("chdir …/merged: no such file or directory"). A lock directory holds the owner's pid; a lock whose
// owner is gone is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LOCK = '/tmp/ocimirror-image-build.lock';

function ownerAlive(): boolean {
  let pid: number;
  try { pid = Number(readFileSync(join(LOCK, 'pid'), 'utf8')); } catch { return true; /* being written: wait */ }
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export async function withBuildLock<T>(what: string, fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!ownerAlive()) { rmSync(LOCK, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`${what}: another test process held ${LOCK} for ${waitMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  writeFileSync(join(LOCK, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
