// Passes bytes through while hashing them and holds back the final chunk until the digest is known: a mismatch
// ends the stream with an error (the client connection is aborted), never with a clean end and wrong bytes.
import { Transform, type TransformCallback } from 'node:stream';
import { DigestVerifier } from './digest.js';
import { OciError } from './errors.js';

export class VerifyingStream extends Transform {
  private held: Buffer | undefined;
  private readonly verifier: DigestVerifier;

  constructor(readonly expected: string, readonly expectedSize?: number) {
    super();
    this.verifier = new DigestVerifier(expected);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.verifier.update(chunk);
    const prev = this.held;
    this.held = chunk;
    if (prev) this.push(prev);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.verifier.size !== this.expectedSize) {
      done(new OciError('SIZE_INVALID', { expected: this.expectedSize, got: this.verifier.size }, { status: 502, message: 'upstream sent a blob of the wrong size' }));
      return;
    }
    const got = this.verifier.digest();
    if (got !== this.expected) {
      done(new OciError('DIGEST_INVALID', { expected: this.expected, got }, { status: 502, message: 'upstream sent bytes that do not match the digest' }));
      return;
    }
    if (this.held) this.push(this.held);
    done();
  }
}
