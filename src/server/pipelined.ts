// How many requests one connection may have in flight at once. Node parses every request a client pipelines
// (a 64 KiB read holds two thousand `GET /v2/`), and while they wait for their turn (turns.ts) no response fills
// the socket's buffer to make Node stop reading: a client that pipelines without reading the answers would grow
// memory without bound. Go's server, Distribution's, reads the next request only after answering the last;
// containerd and Docker never pipeline. A connection past the limit is closed.
import type { Socket } from 'node:net';

/** Requests in flight on one connection before it is closed: generous for a client that pipelines honestly. */
export const MAX_PIPELINED = 32;

export class PipelineLimit {
  private readonly inFlight = new WeakMap<Socket, number>();

  /**
   * Counts a request on `socket` until `done` fires; false (and the connection destroyed) when it is one too many.
   * `done` must be called once per admitted request.
   */
  admit(socket: Socket): boolean {
    const n = (this.inFlight.get(socket) ?? 0) + 1;
    if (n > MAX_PIPELINED) {
      socket.destroy();
      return false;
    }
    this.inFlight.set(socket, n);
    return true;
  }

  done(socket: Socket): void {
    const n = this.inFlight.get(socket) ?? 0;
    if (n <= 1) this.inFlight.delete(socket);
    else this.inFlight.set(socket, n - 1);
  }
}
