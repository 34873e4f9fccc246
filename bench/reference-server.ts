// node --import tsx bench/reference-server.ts UPSTREAM_URL FILE TMP_DIR
// The plainest Node code for ocimirror's two jobs, as the benchmark's yardstick (issue 9): a forwarder that GETs
// the blob from the upstream, hashes it and writes it to a file while streaming it to the client (cold), and a
// static server that pipes one file to every GET (warm). Prints {"forward":PORT,"static":PORT} when listening.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
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

const size = fs.statSync(staticFile).size;
const statics = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  fs.createReadStream(staticFile).pipe(res);
});

const listen = (server: http.Server) => new Promise<number>((resolve) => {
  server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
});
const ports = { forward: await listen(forward), static: await listen(statics) };
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.on('SIGTERM', () => { forward.closeAllConnections(); statics.closeAllConnections(); forward.close(); statics.close(); agent.destroy(); });
