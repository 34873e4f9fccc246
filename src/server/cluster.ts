// The cluster parts of a replica (cluster: in the config): the Redis link, leases, the shared ledger and evictor
// behind the cache's index, and what /readyz says about them. Redis being away never stops a replica: it serves
// and fills on its own, logs the change, and /readyz reports it while staying 200 (one shared dependency failing
// must not take every replica out of its Service at once).
import type { Logger } from 'pino';
import type { Config, ClusterConfig, S3StoreConfig } from '../config/schema.js';
import { Leases } from '../cluster/lease.js';
import { Ledger } from '../cluster/ledger.js';
import { RedisLink, redactUrl } from '../cluster/redis-link.js';
import { ClusterEvictor } from '../cache/cluster-evictor.js';
import { ClusterIndex, replicaName } from '../cache/cluster-index.js';
import type { IndexFactory } from '../cache/service.js';
import { SharedFills } from '../cache/shared-fills.js';
import { PeerClient } from '../cluster/peer-client.js';
import type { Check } from './health.js';

export interface ClusterParts {
  link: RedisLink;
  leases: Leases;
  index: IndexFactory;
  fills: SharedFills;
  /** The evictor, once the index exists (tests, shutdown). */
  evictor(): ClusterEvictor | undefined;
  readiness(): Check;
  close(): Promise<void>;
}

/** One key prefix per bucket and prefix (in braces: a Redis Cluster keeps all of a deployment's keys in one slot). */
export function clusterKeyPrefix(store: S3StoreConfig): string {
  return `ocimirror:{${store.bucket}/${store.prefix}}:`;
}

export async function openCluster(config: Config & { cluster: ClusterConfig }, log: Logger): Promise<ClusterParts> {
  const store = config.cache.store as S3StoreConfig;
  const keyPrefix = clusterKeyPrefix(store);
  const link = new RedisLink({ url: config.cluster.redis, log });
  // Start without Redis if it is away: the replica serves on its own until the link comes up.
  await link.whenUp(3000).catch(() => undefined);
  const leases = new Leases(link, { owner: config.cluster.advertiseUrl, keyPrefix });
  const ledger = new Ledger(link, { keyPrefix, replica: replicaName(), pinTtlMs: 30_000 });
  const peers = new PeerClient(config.cluster.secret);
  const fills = new SharedFills({ leases, peers, self: config.cluster.advertiseUrl, log });
  let evictor: ClusterEvictor | undefined;
  const limits = { maxSize: config.cache.maxSize, maxEntries: config.cache.maxEntries };
  const index: IndexFactory = (stores, sources, events) => {
    let built: ClusterIndex | undefined;
    evictor = new ClusterEvictor({ ledger, leases, stores, sources, limits, log, events, onEvicted: (m) => built?.evicted(m) });
    built = new ClusterIndex({ stores, limits, ledger, evictor, log, events });
    return built;
  };
  return {
    link, leases, index, fills,
    evictor: () => evictor,
    readiness: () => {
      const s = link.status();
      return s.up
        ? { ok: true, detail: `coordinating through ${redactUrl(config.cluster.redis)}` }
        : { ok: true, degraded: true, detail: `Redis unavailable since ${new Date(s.since).toISOString()} (${s.error ?? 'unknown'}); fetching on its own` };
    },
    async close() {
      await evictor?.idle();
      await Promise.all([link.close(), peers.close()]);
    },
  };
}
