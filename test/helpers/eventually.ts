// Polls `fn` until it returns a value, for at most `ms`: waiting for a positive signal, never a fixed sleep.
export async function eventually<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no result within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
