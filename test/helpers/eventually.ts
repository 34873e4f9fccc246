// Waiting for a positive signal, never a fixed sleep: poll until it shows, and fail after `ms` naming what was
// awaited.

/** Polls `fn` every 20 ms until it returns a value. */
export async function eventually<T>(fn: () => Promise<T | undefined>, ms = 10_000, what = 'a result'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `check` every 20 ms until it is true. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  await eventually(async () => ((await check()) ? true : undefined), ms, what);
}
