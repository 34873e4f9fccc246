// cache.store and cluster: defaults, secrets from the environment, file:line:col errors that never echo a secret,
// and logs that never carry one.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/server/logger.js';

const S3 = 'cache:\n  store:\n    type: s3\n    bucket: ocimirror\n';
const CLUSTER = 'cluster:\n  redis: redis://127.0.0.1:16379\n  advertiseUrl: http://10.0.0.5:5000\n';

function parse(yaml: string, env: Record<string, string> = {}) {
  return parseConfig('c.yaml', yaml, { env });
}

function problems(yaml: string, env: Record<string, string> = {}): readonly string[] {
  try {
    parse(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('cache.store', () => {
  it('defaults to the filesystem store in cache.dir, and no cluster', () => {
    const c = parse('');
    expect(c.cache.store).toEqual({ type: 'fs' });
    expect(c.cluster).toBeUndefined();
    expect(parse('cache:\n  store:\n    type: fs\n').cache.store).toEqual({ type: 'fs' });
  });

  it('s3 with an endpoint: path-style by default, region us-east-1, empty prefix, no redirect', () => {
    expect(parse(`${S3}    endpoint: http://127.0.0.1:17480\n`).cache.store).toEqual({
      type: 's3', endpoint: 'http://127.0.0.1:17480', region: 'us-east-1', bucket: 'ocimirror', prefix: '', forcePathStyle: true, redirect: false,
    });
    expect(parse(`${S3}    redirect: true\n`).cache.store).toMatchObject({ redirect: true });
    expect(problems('cache:\n  store:\n    type: fs\n    redirect: true\n')).toEqual(['c.yaml:4:5: cache.store.redirect: expected only type with type fs (the other keys are for s3)']);
    // AWS itself (no endpoint): virtual-hosted style, unless asked otherwise.
    expect(parse(`${S3}    region: eu-west-1\n    prefix: mirror/\n`).cache.store).toMatchObject({ region: 'eu-west-1', prefix: 'mirror/', forcePathStyle: false });
    expect(parse(`${S3}    endpoint: https://s3.example.com\n    forcePathStyle: false\n`).cache.store).toMatchObject({ forcePathStyle: false });
  });

  it('keys from the file, from AWS_* for the missing half, or neither (the SDK chain reads the environment itself)', () => {
    const env = { AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'envsecret' };
    expect(parse(`${S3}    accessKeyId: FILEKEY\n    secretAccessKey: filesecret\n`, env).cache.store).toMatchObject({ accessKeyId: 'FILEKEY', secretAccessKey: 'filesecret' });
    expect(parse(`${S3}    accessKeyId: FILEKEY\n`, env).cache.store).toMatchObject({ accessKeyId: 'FILEKEY', secretAccessKey: 'envsecret' });
    const none = parse(S3, env).cache.store;
    expect(none).not.toHaveProperty('accessKeyId');
    expect(none).not.toHaveProperty('secretAccessKey');
    expect(problems(`${S3}    accessKeyId: FILEKEY\n`)).toEqual([
      'c.yaml:3:5: cache.store: expected accessKeyId and secretAccessKey together; secretAccessKey (or AWS_SECRET_ACCESS_KEY) is missing',
    ]);
  });

  it('refuses mistakes with file:line:col', () => {
    expect(problems('cache:\n  store:\n    type: gcs\n')).toEqual(['c.yaml:3:11: cache.store.type: expected fs or s3, got "gcs"']);
    expect(problems('cache:\n  store:\n    type: s3\n')).toEqual(['c.yaml:3:5: cache.store.bucket: expected a bucket name with type s3']);
    expect(problems('cache:\n  store:\n    type: s3\n    bucket: My_Bucket\n')).toEqual([
      'c.yaml:4:13: cache.store.bucket: expected an S3 bucket name (3-63 of a-z 0-9 . -), got "My_Bucket"',
    ]);
    expect(problems(`${S3}    endpoint: 127.0.0.1:17480\n`)).toEqual([
      'c.yaml:5:15: cache.store.endpoint: expected an http(s) URL like "http://127.0.0.1:17480", got "127.0.0.1:17480"',
    ]);
    expect(problems(`${S3}    prefix: /abs//x\n`)).toEqual([
      'c.yaml:5:13: cache.store.prefix: expected a key prefix like "ocimirror/" (no leading slash, no empty segments), got "/abs//x"',
    ]);
    expect(problems(`${S3}    forcePathStyle: "yes"\n`)).toEqual(['c.yaml:5:21: cache.store.forcePathStyle: expected true or false, got the string "yes"']);
    expect(problems('cache:\n  store:\n    type: fs\n    bucket: b\n')).toEqual(['c.yaml:4:5: cache.store.bucket: expected only type with type fs (the other keys are for s3)']);
    expect(problems(`${S3}    bukket: x\n`)).toEqual([
      'c.yaml:5:5: cache.store.bukket: unknown key; expected one of type, endpoint, region, bucket, prefix, forcePathStyle, accessKeyId, secretAccessKey, redirect',
    ]);
  });
});

const SECRET = { OCIMIRROR_CLUSTER_SECRET: 'a-shared-secret-of-32-characters-or-more' };

describe('cluster', () => {
  it('takes redis and advertiseUrl from the file or from REDIS_URL / OCIMIRROR_ADVERTISE_URL, the secret from the environment', () => {
    expect(parse(S3 + CLUSTER, SECRET).cluster).toEqual({ redis: 'redis://127.0.0.1:16379', advertiseUrl: 'http://10.0.0.5:5000', secret: SECRET.OCIMIRROR_CLUSTER_SECRET });
    const env = { ...SECRET, REDIS_URL: 'rediss://:pw@redis.example:6380/1', OCIMIRROR_ADVERTISE_URL: 'http://10.0.0.7:5000/' };
    expect(parse(`${S3}cluster: {}\n`, env).cluster).toEqual({ redis: 'rediss://:pw@redis.example:6380/1', advertiseUrl: 'http://10.0.0.7:5000', secret: SECRET.OCIMIRROR_CLUSTER_SECRET });
    // REDIS_URL alone does not make a cluster: the cluster key does.
    expect(parse(S3, env).cluster).toBeUndefined();
  });

  it('refuses a cluster without shared storage, Redis or a reachable advertiseUrl, never echoing a password', () => {
    expect(problems(CLUSTER, SECRET)).toEqual(['c.yaml:2:3: cluster: expected cache.store.type s3 with cluster (replicas share one bucket)']);
    expect(problems(`${S3}cluster: {}\n`, SECRET)).toEqual([
      'c.yaml:5:10: cluster.redis: expected a redis:// URL here or in REDIS_URL',
      'c.yaml:5:10: cluster.advertiseUrl: expected the http(s)://host:port other replicas reach this one at, here or in OCIMIRROR_ADVERTISE_URL',
    ]);
    const bad = problems(`${S3}cluster:\n  redis: http://:hunter2@127.0.0.1:6379\n  advertiseUrl: http://0.0.0.0:5000\n`, SECRET);
    expect(bad).toEqual([
      'c.yaml:6:10: cluster.redis: expected a URL like "redis://host:6379" (or rediss:// for TLS), got "http://:[redacted]@127.0.0.1:6379"',
      'c.yaml:7:17: cluster.advertiseUrl: expected http(s)://host[:port] without a path that other replicas can reach, got "http://0.0.0.0:5000"',
    ]);
    expect(bad.join('\n')).not.toContain('hunter2');
  });

  it('refuses a cluster without a long enough OCIMIRROR_CLUSTER_SECRET, never echoing it', () => {
    expect(problems(S3 + CLUSTER)).toEqual([
      'c.yaml:6:3: cluster: expected OCIMIRROR_CLUSTER_SECRET in the environment (the same random string of at least 32 characters on every replica), got none',
    ]);
    const short = problems(S3 + CLUSTER, { OCIMIRROR_CLUSTER_SECRET: 'tooshort-secret' });
    expect(short).toEqual([expect.stringMatching(/got 15 characters$/)]);
    expect(short.join('\n')).not.toContain('tooshort-secret');
  });

  it('logs never carry the S3 secret, the Redis password or the cluster secret', () => {
    const config = parse(`${S3}    accessKeyId: AKIAEXAMPLE\n    secretAccessKey: wJalrXUtnFEMI-secret\ncluster:\n  redis: redis://:redis-pass@127.0.0.1:6379\n  advertiseUrl: http://10.0.0.5:5000\n`, SECRET);
    let text = '';
    const log = createLogger('info', new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } }));
    log.info({ config }, 'config');
    log.info({ cache: config.cache, cluster: config.cluster }, 'parts');
    log.info({ store: config.cache.store }, 'store');
    expect(text).toContain('AKIAEXAMPLE');
    expect(text).not.toContain('wJalrXUtnFEMI-secret');
    expect(text).not.toContain('redis-pass');
    expect(text).not.toContain(SECRET.OCIMIRROR_CLUSTER_SECRET);
  });
});
