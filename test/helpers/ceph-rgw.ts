// A throwaway single-node Ceph (mon, OSD on memstore, radosgw) for tests: the real S3 API on 127.0.0.1, started by
// scripts/services/start-ceph-rgw.sh on free ports in a temp dir (~2 s), stopped by its recorded PIDs.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/cache/s3-client.js';
import { freePort } from './ports.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from './tmp.js';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../scripts/services');

export interface CephRgw {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A client with the settings RGW 16.2 needs (the store's own). */
  client(): S3Client;
  /** Creates a bucket with a fresh name (or the given one) and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** Stops the daemons (SIGTERM, then SIGKILL) and removes the temp dir. */
  stop(): Promise<void>;
}

function readEnv(file: string): Record<string, string> {
  return Object.fromEntries(readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function killRecorded(dir: string): void {
  try {
    for (const line of readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n').reverse()) {
      const pid = Number(line.split(' ')[1]);
      if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
    }
  } catch { /* never started */ }
}

export async function startCephRgw(): Promise<CephRgw> {
  const tmp = makeTmpDir('ocimirror-ceph-');
  const dir = join(tmp, 'ceph');
  const unregister = atProcessExit(() => killRecorded(dir));
  let lastError: unknown;
  // A free port can be taken between freePort() and bind: try again with new ones.
  for (let attempt = 0; attempt < 3; attempt++) {
    const env = { ...process.env, RGW_PORT: String(await freePort()), MON_PORT: String(await freePort()) };
    try {
      await run('bash', [join(SCRIPTS, 'start-ceph-rgw.sh'), dir], { env, timeout: 180_000 });
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      const e = err as { stderr?: string };
      if (!/address already in use|timeout waiting/i.test(`${e.stderr ?? ''}${readLogs(dir)}`)) break;
    }
  }
  if (lastError) {
    unregister();
    await removeTmpDir(tmp);
    throw new Error(`Ceph RGW did not start: ${(lastError as { stderr?: string }).stderr ?? String(lastError)}`);
  }
  const env = readEnv(join(dir, 's3.env'));
  const rgw = {
    endpoint: env.S3_ENDPOINT!, region: env.S3_REGION!, accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY!,
  };
  const clients: S3Client[] = [];
  const client = () => {
    const c = createS3Client({ ...rgw, forcePathStyle: true });
    clients.push(c);
    return c;
  };
  return {
    ...rgw,
    client,
    async createBucket(name = `test-${randomBytes(6).toString('hex')}`) {
      const c = client();
      await c.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      for (const c of clients) c.destroy();
      await run('bash', [join(SCRIPTS, 'stop-ceph-rgw.sh'), dir], { timeout: 60_000 }).catch(() => killRecorded(dir));
      unregister();
      await removeTmpDir(tmp);
    },
  };
}

function readLogs(dir: string): string {
  try { return readFileSync(join(dir, 'log', 'rgw.out'), 'utf8').slice(-2000); } catch { return ''; }
}
