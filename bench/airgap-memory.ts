// Memory of `ocimirror export` and `ocimirror import` with a large layer: each runs as its own process (the built
// CLI, node dist/), which prints its peak resident set (VmHWM from /proc/self/status) when done. Goal: both under
// 150 MB with a 1 GiB layer, i.e. memory independent of image size. Prints a table; exits non-zero only on errors.
//   npm run bench:airgap [-- --size-mib 1024 --gzip]
import { spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { startDistribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
export const GOAL_BYTES = 150 * 1000 * 1000;

export interface Step { step: string; seconds: number; bytes: number; hwm: number }

/** Runs `ocimirror ARGS` from dist/ in a child process; resolves to its exit code and peak RSS. */
export function runMeasured(args: string[]): Promise<{ code: number; hwm: number; output: string }> {
  const script = `import { readFileSync } from 'node:fs';
const { main } = await import(${JSON.stringify(MAIN)});
const code = await main(${JSON.stringify(args)});
const kb = /^VmHWM:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];
process.stderr.write('\\nocimirror-bench VmHWM ' + kb + '\\n');
process.exitCode = code;`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-8000); });
    child.stderr.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-8000); });
    child.once('error', reject);
    child.once('exit', (code) => {
      const kb = /ocimirror-bench VmHWM (\d+)/.exec(output)?.[1];
      if (kb === undefined) return reject(new Error(`ocimirror ${args[0]} exited ${code} without a memory figure:\n${output}`));
      resolve({ code: code ?? 1, hwm: Number(kb) * 1024, output });
    });
  });
}

/** Pushes a one-layer image of `sizeBytes` to a fresh Distribution, then export (cold: pulled through) and import. */
export async function measureAirgap(sizeBytes: number, opts: { gzip?: boolean } = {}): Promise<Step[]> {
  const work = makeTmpDir('ocimirror-bench-airgap-');
  const dist = await startDistribution();
  try {
    const image = await buildLargeLayerImage({ format: 'oci', sizeBytes, dir: work, compression: 'none', label: 'airgap bench' });
    await pushImage(dist.url, 'library/big', '1.0', image);
    const config = (name: string) => {
      const file = path.join(work, `${name}.yaml`);
      writeFileSync(file, YAML.stringify({ log: { level: 'warn' }, cache: { dir: path.join(work, name) }, mirrors: { 'docker.io': { endpoint: [dist.url] } } }));
      return file;
    };
    const archive = path.join(work, opts.gzip ? 'big.tar.gz' : 'big.tar');
    const steps: Step[] = [];
    const measure = async (step: string, args: string[], bytes: () => number) => {
      const t0 = performance.now();
      const r = await runMeasured(args);
      if (r.code !== 0) throw new Error(`${step} failed (exit ${r.code}):\n${r.output}`);
      steps.push({ step, seconds: (performance.now() - t0) / 1000, bytes: bytes(), hwm: r.hwm });
    };
    await measure('export, cold cache (pulls the layer, then writes it)', ['export', '-c', config('central'), '-o', archive, 'big:1.0'], () => image.layers[0]!.size);
    await measure('export, warm cache', ['export', '-c', config('central'), '-o', archive, 'big:1.0'], () => statSync(archive).size);
    await measure('import into an empty cache', ['import', '-c', config('remote'), archive], () => statSync(archive).size);
    return steps;
  } finally {
    await dist.close();
    await removeTmpDir(work);
  }
}

function table(steps: Step[]): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const rows = [['step', 'seconds', 'MB/s', 'peak RSS (VmHWM) MB', 'goal < 150 MB']];
  for (const s of steps) rows.push([s.step, s.seconds.toFixed(1), mb(s.bytes / s.seconds), mb(s.hwm), s.hwm < GOAL_BYTES ? 'PASS' : 'MISS']);
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(w[c]!)).join('  ')).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '1024' }, gzip: { type: 'boolean', default: false } } });
  const size = Number(values['size-mib']) * 1024 * 1024;
  console.log(`ocimirror export/import memory, one layer of ${values['size-mib']} MiB${values.gzip ? ', gzip archive' : ''}`);
  const steps = await measureAirgap(size, { gzip: values.gzip });
  console.log(table(steps));
}
