// The follower's side of a fill another replica owns: GET <owner>/_ocimirror/fills/<digest> (signed, with the
// client's Range), answered from the owner's running fill. 404 means the owner has no fill for the digest (it
// finished, failed or never started); an owner that cannot be reached is told apart from one that answered.
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { PEER_AUTH_HEADER, signPeerRequest } from './peer-auth.js';

export const PEER_FILL_PATH = '/_ocimirror/fills/';
/** Response header with the blob's full size (the owner's plan of the Range is then the follower's too). */
export const PEER_SIZE_HEADER = 'x-ocimirror-blob-size';

export type PeerAnswer =
  | { kind: 'fill'; status: number; size: number; body: Readable }
  | { kind: 'none' }
  | { kind: 'unreachable'; reason: string };

export class PeerClient {
  private readonly agent: Agent;

  constructor(private readonly secret: string, opts: { connectTimeoutMs?: number; bodyTimeoutMs?: number } = {}) {
    this.agent = new Agent({
      connect: { timeout: opts.connectTimeoutMs ?? 5_000 },
      // The owner answers once upstream told it the size; silence inside a body means the owner is gone.
      headersTimeout: 120_000,
      bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
    });
  }

  async fill(owner: string, digest: string, range: string | undefined, signal?: AbortSignal): Promise<PeerAnswer> {
    const path = `${PEER_FILL_PATH}${digest}`;
    const headers: Record<string, string> = { [PEER_AUTH_HEADER]: signPeerRequest(this.secret, 'GET', path) };
    if (range) headers.range = range;
    let res;
    try {
      res = await request(`${owner}${path}`, { method: 'GET', headers, dispatcher: this.agent, ...(signal ? { signal } : {}) });
    } catch (err) {
      return { kind: 'unreachable', reason: (err as Error).message };
    }
    const size = Number(res.headers[PEER_SIZE_HEADER]);
    if (res.statusCode === 404 || !Number.isSafeInteger(size) || size < 0) {
      await res.body.dump().catch(() => undefined);
      return res.statusCode === 404 ? { kind: 'none' } : { kind: 'unreachable', reason: `owner answered ${res.statusCode} without a blob size` };
    }
    return { kind: 'fill', status: res.statusCode, size, body: res.body };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
