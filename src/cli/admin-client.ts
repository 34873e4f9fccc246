// The CLI side of the server's admin socket (src/server/admin-socket.ts): used when a server runs on the cache. It
// answers what a CacheAdmin on the stores answers, so `cache` works the same with or without a server.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'undici';
import type { CacheAdmin, CachedImage, ImageTarget, RemovalReport } from '../cache/cache-admin.js';
import { ADMIN_SOCKET, answers } from '../server/admin-socket.js';

export class AdminClient implements Pick<CacheAdmin, 'list' | 'remove' | 'prune'> {
  private constructor(private readonly client: Client, readonly path: string) {}

  /** A client for the running server's socket, or undefined when no server answers on it. */
  static async connect(cacheDir: string): Promise<AdminClient | undefined> {
    const path = join(cacheDir, ADMIN_SOCKET);
    if (!existsSync(path) || !(await answers(path))) return undefined;
    return new AdminClient(new Client('http://ocimirror-admin', { socketPath: path, headersTimeout: 600_000, bodyTimeout: 600_000 }), path);
  }

  list(): Promise<CachedImage[]> {
    return this.call('GET', '/cache/images');
  }

  remove(images: ImageTarget[]): Promise<RemovalReport> {
    return this.call('POST', '/cache/rm', { images });
  }

  prune(olderThanMs: number): Promise<RemovalReport> {
    return this.call('POST', '/cache/prune', { olderThanMs });
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.client.request({
      method, path, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const data = (await res.body.json()) as T & { error?: string };
    if (res.statusCode !== 200) throw new Error(`the server refused ${method} ${path}: ${data.error ?? res.statusCode}`);
    return data;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
