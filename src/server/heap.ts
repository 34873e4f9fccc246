// V8's heap sizing for a process whose traffic lives outside the heap. After each mark-compact V8 sets the next
// old-generation limit to the live heap times a growing factor it picks (1.1 to 4) from its on-heap allocation
// speed, and counts off-heap buffers allocated since against that limit. A proxy allocates mostly socket buffers,
// so V8 picks close to 1.1: once the process has idled between pulls it marks the whole heap every 15-30 MB of
// cold traffic. A fixed factor gives the buffers room (bench/PROFILE.md §6).
import v8 from 'node:v8';

const FLAG = '--heap-growing-percent';
/** Factor 3 (1 + 200/100): the smallest that removed the mark-compact mode in the A/B; 300 gained nothing more. */
export const HEAP_GROWING_PERCENT = 200;

/** The flag to set, or undefined when node's own command line already sets it (the operator's value wins). */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  const set = execArgv.some((arg) => {
    const name = arg.split('=', 1)[0]!.replaceAll('_', '-');
    return name === FLAG;
  });
  return set ? undefined : `${FLAG}=${HEAP_GROWING_PERCENT}`;
}

/** Sets the growing factor for this process (V8 reads it at every mark-compact, so setting it at run time works). */
export function tuneHeapGrowth(execArgv: readonly string[] = process.execArgv): void {
  const flag = heapGrowthFlag(execArgv);
  if (flag) v8.setFlagsFromString(flag);
}
