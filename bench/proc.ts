// What the kernel knows about a benchmarked process: CPU seconds used and resident memory (now and peak).
import fs from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** User + system CPU seconds a live process has used so far (NaN once it is gone). */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try { stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return NaN; }
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export interface Memory { rss: number; hwm: number }

/** VmRSS and VmHWM (peak resident set, kept by the kernel: no sampling gap can miss it), in bytes. */
export function memory(pid: number): Memory | undefined {
  let status: string;
  try { status = fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return undefined; }
  const bytes = (field: string) => 1024 * Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: bytes('VmRSS'), hwm: bytes('VmHWM') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `done()` holds and the process has used no CPU for `quietMs`: background work a transfer left
 * behind (a cache commit, Distribution's second fetch) is then over and counted in the CPU figure of its row.
 * Resolves to the process's CPU seconds as read before the last `done()` (which may itself cost the process CPU).
 */
export async function settle(pid: number, done: () => Promise<boolean> | boolean = () => true, quietMs = 300, maxMs = 60_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = cpuSeconds(pid);
  let quietSince = Date.now();
  for (;;) {
    await sleep(50);
    const now = cpuSeconds(pid);
    if (now !== last) { last = now; quietSince = Date.now(); }
    if (Date.now() - quietSince >= quietMs && (await done())) return now;
    if (Date.now() > deadline) throw new Error(`process ${pid} still busy (or its work unfinished) after ${maxMs / 1000} s`);
  }
}
