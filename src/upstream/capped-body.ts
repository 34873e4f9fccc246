// A small upstream body (a manifest, a list, a token response) read whole, with its cap checked before reading (the
// declared Content-Length) and while reading: nothing beyond the cap is ever held in memory.
import type { Readable } from 'node:stream';

/** The body's bytes; past the cap, the error `tooLarge` makes (given the declared size when that was too large). */
export async function readCapped(body: Readable, limit: number, declared: number | undefined, tooLarge: (declared?: number) => Error): Promise<Buffer> {
  if (declared !== undefined && Number.isFinite(declared) && declared > limit) {
    body.destroy();
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
