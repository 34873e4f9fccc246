// The soak's /healthz prober, in a process of its own as a kubelet's is: its latencies measure the proxy, not the
// event loop of the process that also drives the 300 soak clients. Usage: node --import tsx health-probe.ts PORT
// SECONDS; prints "ready" once connected, probes every 50 ms over that keep-alive connection, and prints
// {"latencies":[...],"failures":N} at the end.
import { Client } from 'undici';

const port = Number(process.argv[2]);
const until = Date.now() + Number(process.argv[3]) * 1000;
const client = new Client(`http://127.0.0.1:${port}`, { keepAliveTimeout: 60_000 });
const latencies: number[] = [];
let failures = 0;
// The connection is opened before the soak clients arrive, so no probe pays for a connect under their load.
await (await client.request({ method: 'GET', path: '/healthz' })).body.dump();
process.stdout.write('ready\n');
while (Date.now() < until) {
  const started = performance.now();
  try {
    const res = await client.request({ method: 'GET', path: '/healthz', headersTimeout: 30_000, bodyTimeout: 30_000 });
    await res.body.dump();
    if (res.statusCode !== 200) failures++;
  } catch {
    failures++;
  }
  latencies.push(performance.now() - started);
  await new Promise((r) => setTimeout(r, 50));
}
await client.close();
process.stdout.write(`${JSON.stringify({ latencies, failures })}\n`);
