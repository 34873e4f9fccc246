// GET /_ocimirror/fills/<digest>: another replica of the cluster follows a fill running here (it lost the race for
// the fill's lease). Only for requests signed with the cluster secret: clients get 401 whatever they send, and the
// route exists only when the config has `cluster:`. 404 when no fill of the digest runs here (it ended: the
// follower reads the bucket).
import type { FastifyInstance } from 'fastify';
import { PEER_AUTH_HEADER, verifyPeerRequest } from '../cluster/peer-auth.js';
import { PEER_FILL_PATH, PEER_SIZE_HEADER } from '../cluster/peer-client.js';
import { OciError } from '../oci/errors.js';
import { checkDigest } from '../oci/names.js';
import { parseRange } from '../oci/range.js';
import type { BlobResult } from '../oci/service.js';
import { replyWithBlob } from './blobs.js';
import { record } from './context.js';

export interface LocalFills {
  followFill(digest: string, range: ReturnType<typeof parseRange>): Promise<BlobResult | undefined>;
}

export function peerFillsPlugin(fills: LocalFills, secret: string): (app: FastifyInstance) => void {
  return (app) => {
    app.get(`${PEER_FILL_PATH}:digest`, async (req, reply) => {
      const path = req.url.split('?', 1)[0]!;
      const header = req.headers[PEER_AUTH_HEADER];
      if (!verifyPeerRequest(secret, typeof header === 'string' ? header : undefined, 'GET', path)) {
        throw new OciError('UNAUTHORIZED', undefined, { message: 'internal route of the cluster' });
      }
      const { digest } = req.params as { digest: string };
      checkDigest(digest);
      const result = await fills.followFill(digest, parseRange(req.headers.range));
      if (!result) throw new OciError('BLOB_UNKNOWN', { digest }, { message: 'no fill of this blob runs on this replica' });
      record(req.ctx, result);
      reply.header(PEER_SIZE_HEADER, String(result.size));
      return replyWithBlob(req, reply, result);
    });
  };
}
