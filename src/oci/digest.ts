// Streaming digest verification.
import { createHash, type Hash } from 'node:crypto';

export function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export function digestOf(data: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Feeds bytes as they pass; `matches()` tells whether what passed has the expected digest. */
export class DigestVerifier {
  private readonly hash: Hash;
  private bytes = 0;
  constructor(readonly expected: string) {
    this.hash = createHash(algorithmOf(expected));
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  get size(): number {
    return this.bytes;
  }
  /** Final: the hash cannot be updated afterwards. */
  digest(): string {
    return `${algorithmOf(this.expected)}:${this.hash.digest('hex')}`;
  }
  matches(): boolean {
    return this.digest() === this.expected;
  }
}
