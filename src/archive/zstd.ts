// zstd decompression for archives (K3s ships k3s-airgap-images-*.tar.zst). Node 20's zlib has no zstd, so this is
// fzstd (pure JavaScript, read only): no native build, nothing downloaded at install time. Writing zstd is not
// offered; pipe `export -o -` through the zstd tool instead.
import { Decompress } from 'fzstd';

/** Small input slices bound what one push can expand to (a run of zeros compresses ~4000:1). */
const SLICE = 1024;

/** A pipeline stage: zstd frames in, their content out, one bounded burst at a time (a yield waits for the reader). */
export async function* zstdDecompress(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let out: Buffer[] = [];
  const d = new Decompress((data) => { if (data.length > 0) out.push(Buffer.from(data)); });
  let seen = false;
  for await (const chunk of source) {
    for (let off = 0; off < chunk.length; off += SLICE) {
      d.push(chunk.subarray(off, Math.min(chunk.length, off + SLICE)));
      seen = true;
      if (out.length > 0) { const ready = out; out = []; yield* ready; }
    }
  }
  if (!seen) throw new Error('unexpected end of data: empty zstd stream');
  d.push(new Uint8Array(0), true);
  yield* out;
}
