// What a cluster of ocimirror replicas runs on in tests: one Ceph RGW with a fresh bucket and one redis-server
// (both real, both on loopback), the shared secret, and replicas on them: as separate processes (the real CLI,
// for kill -9) or in this process (when a test needs their internals).
import { randomBytes } from 'node:crypto';
import { startCephRgw, type CephRgw } from './ceph-rgw.js';
import { freePort } from './ports.js';
import { startTestProxy, type TestProxy } from './proxy.js';
import { startProxyProcess, type ConfigDoc, type ProxyProcess } from './proxy-process.js';
import { startRedis, type RedisServer } from './redis.js';
import { makeTmpDir } from './tmp.js';

export interface ClusterBackends {
  readonly rgw: CephRgw;
  readonly redis: RedisServer;
  readonly bucket: string;
  /** OCIMIRROR_CLUSTER_SECRET for every replica. */
  readonly env: Record<string, string>;
  /** A replica's config: the mirrors and any extra cache keys, on this bucket and Redis, advertising `url`. */
  config(url: string, mirrors: ConfigDoc, cache?: ConfigDoc): ConfigDoc;
  close(): Promise<void>;
}

export async function startClusterBackends(): Promise<ClusterBackends> {
  const [rgw, redis] = await Promise.all([startCephRgw(), startRedis()]);
  const bucket = await rgw.createBucket();
  const env = { OCIMIRROR_CLUSTER_SECRET: randomBytes(24).toString('hex') };
  return {
    rgw, redis, bucket, env,
    config: (url, mirrors, cache = {}) => ({
      mirrors,
      cache: {
        ...cache,
        store: {
          type: 's3', endpoint: rgw.endpoint, bucket, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey,
          ...(cache.store as ConfigDoc | undefined),
        },
      },
      cluster: { redis: redis.url, advertiseUrl: url },
    }),
    async close() {
      await Promise.allSettled([rgw.stop(), redis.close()]);
    },
  };
}

/** `ocimirror serve` as its own process, a replica of the cluster with an empty cache.dir. */
export function startReplicaProcess(b: ClusterBackends, mirrors: ConfigDoc, cache?: ConfigDoc): Promise<ProxyProcess> {
  return startProxyProcess((url) => b.config(url, mirrors, cache), makeTmpDir('ocimirror-replica-'), { env: b.env });
}

/** A replica in this process (its service, index and evictor are reachable through `proxy`). */
export async function startReplicaInProcess(b: ClusterBackends, mirrors: ConfigDoc, cache?: ConfigDoc): Promise<TestProxy> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startTestProxy({ ...b.config(url, mirrors, cache), server: { listen: `127.0.0.1:${port}` } }, { env: b.env });
}
