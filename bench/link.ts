// A rate-limited TCP link on 127.0.0.1 in front of the upstream: the slow or filtered uplink to Docker Hub that
// ocimirror is for. One shared budget for all connections, applied to the upstream → mirror direction.
import net from 'node:net';

export interface Link { readonly url: string; close(): Promise<void> }

export async function startLink(target: { host: string; port: number }, bytesPerSecond: number): Promise<Link> {
  const sockets = new Set<net.Socket>();
  let nextFree = Date.now(); // when the link has finished sending everything scheduled so far
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { client.destroy(); upstream.destroy(); }); }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const now = Date.now();
      nextFree = Math.max(nextFree, now) + (chunk.length / bytesPerSecond) * 1000;
      if (!client.write(chunk)) upstream.pause();
      const wait = nextFree - now;
      if (wait > 5) { upstream.pause(); setTimeout(() => { if (client.writableNeedDrain) return; upstream.resume(); }, wait); }
    });
    client.on('drain', () => { if (Date.now() >= nextFree) upstream.resume(); });
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
