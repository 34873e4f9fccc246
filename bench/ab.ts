// Small requests under load with ApacheBench (`ab -k -c 50`, apache2-utils): requests per second, and an error
// when any request failed or was not 2xx.
import { spawn } from 'node:child_process';

export interface AbOptions { url: string; seconds: number; concurrency: number; head?: boolean; accept?: string }

export function ab(opts: AbOptions): Promise<number> {
  // -t stops after that many seconds; -n after it lifts ab's implied cap of 50,000 requests.
  const args = ['-k', '-q', '-c', String(opts.concurrency), '-t', String(opts.seconds), '-n', '10000000', '-s', '30'];
  if (opts.head) args.push('-i');
  if (opts.accept) args.push('-H', `Accept: ${opts.accept}`);
  args.push(opts.url);
  return new Promise((resolve, reject) => {
    const child = spawn('ab', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    child.once('error', reject);
    child.once('close', (code) => {
      const field = (name: string) => Number(new RegExp(`^${name}:\\s+([\\d.]+)`, 'm').exec(out)?.[1] ?? NaN);
      const complete = field('Complete requests');
      const failed = field('Failed requests');
      const non2xx = field('Non-2xx responses'); // printed only when there were some
      const rps = field('Requests per second');
      if (code !== 0 || !(complete > 0) || failed !== 0 || non2xx > 0 || !Number.isFinite(rps)) {
        reject(new Error(`ab ${args.join(' ')}: exit ${code}, ${complete} complete, ${failed} failed, ${Number.isNaN(non2xx) ? 0 : non2xx} non-2xx:\n${out.slice(-1500)}`));
      } else {
        resolve(rps);
      }
    });
  });
}
