import net from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (bind to port 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address, got ' + String(address));
  return address.port;
}

/** True when a TCP connect to 127.0.0.1:port is refused (nothing listens there). */
export async function isRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A port where connections are refused: a freed port, checked, so "upstream down" tests fail fast. */
export async function deadPort(): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freePort();
    if (await isRefused(port)) return port;
  }
  throw new Error('could not find a port that refuses connections after 10 attempts');
}
