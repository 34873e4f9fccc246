// Crash-only: an exception or rejection nobody handled leaves the process in a state nobody reasoned about, so it is
// logged at fatal and the process exits non-zero; the supervisor restarts it and the cache is crash-safe.
import type { Logger } from 'pino';

/** EX_SOFTWARE (sysexits.h): an internal error. */
export const CRASH_EXIT_CODE = 70;

export function exitOnCrash(log: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  let dying = false;
  const die = (what: string) => (err: unknown) => {
    if (dying) return;
    dying = true;
    log.fatal({ err }, `${what}: ocimirror stops (restart it; the cache survives)`);
    // Give an asynchronous log destination a moment to write the line, never more.
    const timer = setTimeout(() => exit(CRASH_EXIT_CODE), 1000);
    log.flush(() => { clearTimeout(timer); exit(CRASH_EXIT_CODE); });
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));
}
