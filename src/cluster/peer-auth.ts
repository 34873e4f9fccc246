// How replicas prove to each other that a request comes from the cluster: an HMAC-SHA256 over the method, the
// path and a timestamp, keyed with the secret every replica has (OCIMIRROR_CLUSTER_SECRET). The secret itself
// never travels; a signature is good for one path within a minute either way of the receiver's clock.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PEER_AUTH_HEADER = 'x-ocimirror-peer';
const WINDOW_MS = 60_000;

function mac(secret: string, method: string, path: string, at: number): string {
  return createHmac('sha256', secret).update(`${method}\n${path}\n${at}`).digest('hex');
}

/** The header value for a request to `path` (with its query) sent now. */
export function signPeerRequest(secret: string, method: string, path: string, now = Date.now()): string {
  const at = Math.floor(now);
  return `${at}:${mac(secret, method, path, at)}`;
}

/** True when `header` signs exactly this method and path with our secret, within the window. */
export function verifyPeerRequest(secret: string, header: string | undefined, method: string, path: string, now = Date.now()): boolean {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const at = Number(m[1]);
  if (Math.abs(now - at) > WINDOW_MS) return false;
  return timingSafeEqual(Buffer.from(m[2]!, 'hex'), Buffer.from(mac(secret, method, path, at), 'hex'));
}
