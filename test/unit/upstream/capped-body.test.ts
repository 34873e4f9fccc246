// readCapped: manifests, lists and token responses are read whole only up to their cap, checked on the declared
// length before reading and on the bytes while reading.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readCapped } from '../../../src/upstream/capped-body.js';

const tooLarge = (declared?: number) => new Error(declared === undefined ? 'too many bytes' : `declared ${declared}`);

const body = (chunks: Buffer[]) => Readable.from(chunks);

describe('readCapped', () => {
  it('returns every byte of a body within the cap', async () => {
    const b = body([Buffer.from('abc'), Buffer.from('def')]);
    expect((await readCapped(b, 6, 6, tooLarge)).toString()).toBe('abcdef');
  });

  it('refuses a declared length above the cap before reading anything', async () => {
    const b = body([Buffer.alloc(10)]);
    await expect(readCapped(b, 6, 10, tooLarge)).rejects.toThrow('declared 10');
    expect(b.destroyed).toBe(true);
  });

  it('stops at the first chunk past the cap when the length was not declared (or lied)', async () => {
    const b = body([Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)]);
    await expect(readCapped(b, 6, undefined, tooLarge)).rejects.toThrow('too many bytes');
    expect(b.destroyed).toBe(true);
    await expect(readCapped(body([Buffer.alloc(8)]), 6, 3, tooLarge)).rejects.toThrow('too many bytes');
  });
});
