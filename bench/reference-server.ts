// node --import tsx bench/reference-server.ts UPSTREAM_URL FILE TMP_DIR
// The plainest Node code for ocimirror's two jobs, as the benchmark's yardstick (issue 9): a forwarder that GETs
// the blob from the upstream, hashes it and writes it to a file while streaming it to the client (cold), and a
// static server that pipes one file to every GET (warm). A third, the bare pipe, forwards without hashing or writing:
// the ceiling for any Node cold path that parses HTTP; a TCP relay below it moves the upstream's bytes from socket
// to socket and nothing else, the most a Node process can forward here at all. Prints
// {"forward":PORT,"static":PORT,"pipe":PORT,"relay":PORT} when listening.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const [upstreamUrl, staticFile, tmpDir] = process.argv.slice(2) as [string, string, string];
const upstream = new URL(upstreamUrl);
const agent = new http.Agent({ keepAlive: true });
let files = 0;

const forward = http.createServer((req, res) => {
  const upReq = http.get({ host: upstream.hostname, port: upstream.port, path: req.url, agent, headers: { 'accept-encoding': 'identity' } }, (upRes) => {
    if (upRes.statusCode !== 200) { res.writeHead(upRes.statusCode ?? 502); upRes.pipe(res); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': upRes.headers['content-length'] });
    const file = path.join(tmpDir, String(files++));
    const out = fs.createWriteStream(file);
    const hash = createHash('sha256');
    // Waits for whichever of the client and the file is slower.
    let waiting = 0;
    const drained = () => { if (--waiting === 0) upRes.resume(); };
    upRes.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (!out.write(chunk)) { waiting++; out.once('drain', drained); }
      if (!res.write(chunk)) { waiting++; res.once('drain', drained); }
      if (waiting > 0) upRes.pause();
    });
    upRes.on('end', () => {
      res.end();
      out.end(() => {
        const digest = `sha256:${hash.digest('hex')}`;
        if (!req.url?.endsWith(digest)) process.stderr.write(`forwarder: ${req.url} hashed to ${digest}\n`);
        fs.rm(file, { force: true }, () => undefined);
      });
    });
    upRes.on('error', () => { res.destroy(); out.destroy(); });
  });
  upReq.on('error', () => res.destroy());
  res.on('close', () => { if (!res.writableFinished) upReq.destroy(); });
});

const pipe = http.createServer((req, res) => {
  const upReq = http.get({ host: upstream.hostname, port: upstream.port, path: req.url, agent, headers: { 'accept-encoding': 'identity' } }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, { 'content-type': 'application/octet-stream', 'content-length': upRes.headers['content-length'] });
    upRes.pipe(res);
    upRes.on('error', () => res.destroy());
  });
  upReq.on('error', () => res.destroy());
  res.on('close', () => { if (!res.writableFinished) upReq.destroy(); });
});

const relay = net.createServer((client) => {
  const up = net.connect({ host: upstream.hostname, port: Number(upstream.port) });
  client.pipe(up);
  up.pipe(client);
  const close = () => { client.destroy(); up.destroy(); };
  client.on('error', close).on('close', close);
  up.on('error', close).on('close', close);
});

const size = fs.statSync(staticFile).size;
const statics = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  fs.createReadStream(staticFile).pipe(res);
});

const listen = (server: net.Server) => new Promise<number>((resolve) => {
  server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
});
const ports = { forward: await listen(forward), static: await listen(statics), pipe: await listen(pipe), relay: await listen(relay) };
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.on('SIGTERM', () => {
  for (const server of [forward, statics, pipe]) { server.closeAllConnections(); server.close(); }
  relay.close();
  agent.destroy();
});
