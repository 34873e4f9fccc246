// A throwaway redis-server for tests (scripts/services/start-redis.sh): 127.0.0.1 on a free port, no persistence,
// in a temp dir. It can be stopped and started again on the same port, or frozen (SIGSTOP) to play a hung Redis.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from './tmp.js';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../scripts/services');

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>;
  /** SIGTERM, waits for it to exit. */
  stop(): Promise<void>;
  /** SIGSTOP: the port still accepts connections, nothing answers. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = makeTmpDir('ocimirror-redis-');
  const pid = () => Number(readFileSync(join(dir, 'redis.pid'), 'utf8').trim());
  const unregister = atProcessExit(() => { try { process.kill(pid(), 'SIGKILL'); } catch { /* not running */ } });
  let port = 0;
  const start = async () => { await run('bash', [join(SCRIPTS, 'start-redis.sh'), dir, String(port)], { timeout: 30_000 }); };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (err) {
      // The free port was taken before redis bound it: try another.
      if (attempt >= 2) { unregister(); await removeTmpDir(dir); throw err; }
    }
  }
  const stop = async () => {
    try { process.kill(pid(), 'SIGCONT'); } catch { /* not running */ }
    await run('bash', [join(SCRIPTS, 'stop-redis.sh'), dir], { timeout: 30_000 });
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    freeze: () => process.kill(pid(), 'SIGSTOP'),
    thaw: () => process.kill(pid(), 'SIGCONT'),
    async close() {
      await stop();
      unregister();
      await removeTmpDir(dir);
    },
  };
}
