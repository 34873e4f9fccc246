// export and import stream GiBs through short-lived buffers (file reads, fills, tar members). V8 frees the memory
// behind them only when it collects their wrappers, which by default waits for ~64 MB of them: a full collection
// every 16 MiB streamed keeps the process near 100 MB instead (a few ms each, a fraction of a second per GiB).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const EVERY = 16 * 1024 * 1024;

let collect: (() => void) | undefined;

function collector(): () => void {
  if (!collect) {
    // The documented way to reach V8's gc() without starting node with --expose-gc.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

/** Counts streamed bytes and collects garbage every EVERY bytes. */
export class BufferRelease {
  private bytes = 0;

  add(n: number): void {
    this.bytes += n;
    if (this.bytes < EVERY) return;
    this.bytes = 0;
    collector()();
  }
}
