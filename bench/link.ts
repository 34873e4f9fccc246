// A rate-limited TCP link on 127.0.0.1 in front of the upstream: the slow or filtered uplink to Docker Hub that
// ocimirror is for. One shared budget for all connections, applied to the upstream → mirror direction (the same
// link the tests use to keep a fill running).
import { startSlowLink } from '../test/helpers/slow-link.js';

export interface Link { readonly url: string; close(): Promise<void> }

export function startLink(target: { host: string; port: number }, bytesPerSecond: number): Promise<Link> {
  return startSlowLink(`http://${target.host}:${target.port}`, bytesPerSecond);
}
