// cache.store and cluster: where blobs live (the local filesystem, or an S3 bucket several replicas share) and how
// replicas coordinate (Redis, and the URL each replica is reached at by the others). Secrets may come from the
// environment, and never appear in an error message.
import type { Node, Pair } from 'yaml';
import type { ClusterConfig, StoreConfig } from './schema.js';
import type { Walker } from './validate.js';

const STORE_KEYS = ['type', 'endpoint', 'region', 'bucket', 'prefix', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'redirect'];
const CLUSTER_KEYS = ['redis', 'advertiseUrl'];
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^([A-Za-z0-9!_.*'()-]+\/?)*$/;

type Env = Readonly<Record<string, string | undefined>>;
type Fields = Map<string, Pair<Node, Node | null>>;

export function readStore(w: Walker, node: Node | null | undefined, env: Env): StoreConfig {
  const f: Fields | undefined = w.fields(node, 'cache.store', STORE_KEYS);
  if (!f || f.size === 0) return { type: 'fs' };
  const at = (k: string) => f.get(k)?.value;
  const type = f.has('type') ? w.str(at('type'), 'cache.store.type') : 'fs';
  if (type !== 'fs' && type !== 's3') {
    if (type !== undefined) w.fail(at('type'), 'cache.store.type', `expected fs or s3, got ${JSON.stringify(type)}`);
    return { type: 'fs' };
  }
  if (type === 'fs') {
    for (const [k, pair] of f) if (k !== 'type') w.fail(pair.key, `cache.store.${k}`, 'expected only type with type fs (the other keys are for s3)');
    return { type: 'fs' };
  }
  const bucket = f.has('bucket') ? w.str(at('bucket'), 'cache.store.bucket') : w.fail(node, 'cache.store.bucket', 'expected a bucket name with type s3');
  if (bucket !== undefined && !BUCKET.test(bucket)) w.fail(at('bucket'), 'cache.store.bucket', `expected an S3 bucket name (3-63 of a-z 0-9 . -), got ${JSON.stringify(bucket)}`);
  let endpoint: string | undefined;
  if (f.has('endpoint')) {
    endpoint = w.str(at('endpoint'), 'cache.store.endpoint');
    if (endpoint !== undefined && !isHttpUrl(endpoint)) w.fail(at('endpoint'), 'cache.store.endpoint', `expected an http(s) URL like "http://127.0.0.1:17480", got ${JSON.stringify(endpoint)}`);
  }
  const region = f.has('region') ? (w.str(at('region'), 'cache.store.region') ?? '') : 'us-east-1';
  const prefix = f.has('prefix') ? (w.str(at('prefix'), 'cache.store.prefix') ?? '') : '';
  if (!PREFIX.test(prefix)) w.fail(at('prefix'), 'cache.store.prefix', `expected a key prefix like "ocimirror/" (no leading slash, no empty segments), got ${JSON.stringify(prefix)}`);
  // S3-compatible stores (RGW, MinIO) behind an endpoint want path-style; AWS itself wants virtual-hosted.
  const forcePathStyle = f.has('forcePathStyle') ? (w.bool(at('forcePathStyle'), 'cache.store.forcePathStyle') ?? false) : endpoint !== undefined;
  const redirect = f.has('redirect') ? (w.bool(at('redirect'), 'cache.store.redirect') ?? false) : false;
  const accessKeyId = secret(w, at('accessKeyId'), f.has('accessKeyId'), 'cache.store.accessKeyId');
  const secretAccessKey = secret(w, at('secretAccessKey'), f.has('secretAccessKey'), 'cache.store.secretAccessKey');
  // Neither in the file: the SDK's default chain (AWS_* variables with a session token, web identity, instance role).
  const keys = accessKeyId === undefined && secretAccessKey === undefined ? {} : {
    accessKeyId: accessKeyId ?? env.AWS_ACCESS_KEY_ID,
    secretAccessKey: secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY,
  };
  if ('accessKeyId' in keys && (!keys.accessKeyId || !keys.secretAccessKey)) {
    const missing = keys.accessKeyId ? 'secretAccessKey (or AWS_SECRET_ACCESS_KEY)' : 'accessKeyId (or AWS_ACCESS_KEY_ID)';
    w.fail(node, 'cache.store', `expected accessKeyId and secretAccessKey together; ${missing} is missing`);
  }
  return {
    type: 's3', region, bucket: bucket ?? '', prefix, forcePathStyle, redirect, ...(endpoint !== undefined ? { endpoint } : {}),
    ...(keys.accessKeyId && keys.secretAccessKey ? { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey } : {}),
  };
}

export function readCluster(w: Walker, node: Node | null | undefined, present: boolean, env: Env, store: StoreConfig): ClusterConfig | undefined {
  if (!present) return undefined;
  const f: Fields = w.fields(node, 'cluster', CLUSTER_KEYS) ?? new Map();
  const at = (k: string) => f.get(k)?.value;
  const redis = f.has('redis') ? w.str(at('redis'), 'cluster.redis') : env.REDIS_URL;
  if (redis === undefined) {
    if (!f.has('redis')) w.fail(node, 'cluster.redis', 'expected a redis:// URL here or in REDIS_URL');
  } else if (!/^rediss?:$/.test(protocolOf(redis))) {
    w.fail(at('redis') ?? node, 'cluster.redis', `expected a URL like "redis://host:6379" (or rediss:// for TLS), got ${JSON.stringify(withoutPassword(redis))}`);
  }
  const advertiseUrl = f.has('advertiseUrl') ? w.str(at('advertiseUrl'), 'cluster.advertiseUrl') : env.OCIMIRROR_ADVERTISE_URL;
  if (advertiseUrl === undefined) {
    if (!f.has('advertiseUrl')) w.fail(node, 'cluster.advertiseUrl', 'expected the http(s)://host:port other replicas reach this one at, here or in OCIMIRROR_ADVERTISE_URL');
  } else if (!/^https?:\/\/[^/]+\/?$/.test(advertiseUrl) || /^https?:\/\/(0\.0\.0\.0|\[::\])(:|\/|$)/.test(advertiseUrl)) {
    w.fail(at('advertiseUrl') ?? node, 'cluster.advertiseUrl', `expected http(s)://host[:port] without a path that other replicas can reach, got ${JSON.stringify(advertiseUrl)}`);
  }
  if (store.type !== 's3') w.fail(node, 'cluster', 'expected cache.store.type s3 with cluster (replicas share one bucket)');
  // Signs requests between replicas; only from the environment, so it is never in a file or a ConfigMap.
  const secret = env.OCIMIRROR_CLUSTER_SECRET;
  if (secret === undefined || secret.length < 32) {
    w.fail(node, 'cluster', `expected OCIMIRROR_CLUSTER_SECRET in the environment (the same random string of at least 32 characters on every replica), got ${secret === undefined ? 'none' : `${secret.length} characters`}`);
  }
  if (redis === undefined || advertiseUrl === undefined || secret === undefined || secret.length < 32) return undefined;
  return { redis, advertiseUrl: advertiseUrl.replace(/\/$/, ''), secret };
}

function secret(w: Walker, node: Node | null | undefined, present: boolean, path: string): string | undefined {
  if (!present) return undefined;
  const s = w.str(node, path);
  if (s === '') w.fail(node, path, 'expected a non-empty value');
  return s || undefined;
}

function isHttpUrl(s: string): boolean {
  return /^https?:$/.test(protocolOf(s));
}

function protocolOf(s: string): string {
  try { return new URL(s).protocol; } catch { return ''; }
}

function withoutPassword(s: string): string {
  return s.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1[redacted]@');
}
