// A TCP link on 127.0.0.1 in front of a real upstream (Distribution stays real, its access log too) whose
// upstream → client direction is rate-limited, so a fill is certainly still running when a test acts on it.
// The rate can change while connections are open (0 = unlimited).
import net from 'node:net';

export interface SlowLink {
  readonly url: string;
  setRate(bytesPerSecond: number): void;
  close(): Promise<void>;
}

export async function startSlowLink(targetUrl: string, bytesPerSecond: number): Promise<SlowLink> {
  const target = new URL(targetUrl);
  let rate = bytesPerSecond;
  const sockets = new Set<net.Socket>();
  let nextFree = Date.now(); // when everything scheduled so far has been sent, at the current rate
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const now = Date.now();
      nextFree = rate > 0 ? Math.max(nextFree, now) + (chunk.length / rate) * 1000 : now;
      if (!client.write(chunk)) upstream.pause();
      const wait = nextFree - now;
      if (wait > 5) { upstream.pause(); setTimeout(() => { if (!client.writableNeedDrain) upstream.resume(); }, wait); }
    });
    client.on('drain', () => { if (Date.now() >= nextFree) upstream.resume(); });
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setRate(bytes) { rate = bytes; nextFree = Date.now(); },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
