// ocimirror export [--config FILE] -o OUT IMAGE... [--file LIST] [--platform P,P | --all-platforms] [--format oci|docker]
// Thin: parse, then collect the images through the cache (pulling what is missing) and write one archive.
import { TarOutput, type OutputCompression } from '../archive/tar-output.js';
import { CacheSource } from '../airgap/cache-source.js';
import { collectImages, writeArchive, type ExportFormat } from '../airgap/export-images.js';
import { openWorkingCache } from '../airgap/working-cache.js';
import { summary, type Output } from '../warm/progress.js';
import { formatPlatform } from '../warm/walk.js';
import { cliLogger, DEFAULT_CONFIG, loadCacheConfig } from './cache-config.js';
import { parseCommandArgs, UsageError } from './usage.js';
import { platformFilter, readImageRefs } from './warm.js';

const USAGE = `usage: ocimirror export -o OUT IMAGE... [options]

Writes images from the cache into one archive for an air-gapped site; whatever the cache lacks is pulled
through the configured upstreams first. Manifests and blobs are written byte for byte (digests unchanged).
IMAGE is a reference as nodes name it: alpine (= docker.io/library/alpine:latest), ghcr.io/org/app:1.2.

options:
  -o, --output OUT         the archive: OUT.tar, OUT.tar.gz / .tgz (gzip), or - for standard output.
                           zstd is not written: pipe '-o -' through 'zstd' (K3s reads .tar.zst)
  -f, --file LIST          read more references from LIST, one per line (# comments)
  -p, --platform P[,P...]  platforms of a multi-arch image (default: this machine's)
      --all-platforms      every platform of a multi-arch image
      --format oci|docker  oci (default): an OCI image layout, for ctr/k3s ctr images import, K3s's
                           agent/images/ and skopeo oci-archive:; docker: a docker save archive, for
                           docker load and podman load (one platform per image)
  -c, --config FILE        ocimirror's configuration (default ./${DEFAULT_CONFIG}): the cache and upstreams

Exit status: 0 when the archive was written, 1 when any image failed (nothing is written), 2 on a usage error.`;

export interface ExportIo { stdout: Output; stderr: Output }

export async function exportCommand(argv: string[], io: ExportIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    options: {
      output: { type: 'string', short: 'o' }, file: { type: 'string', short: 'f', multiple: true },
      platform: { type: 'string', short: 'p', multiple: true }, 'all-platforms': { type: 'boolean' },
      format: { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) { io.stdout.write(`${USAGE}\n`); return 0; }
  const out = values.output;
  if (!out) throw new UsageError(`-o OUT is required\n\n${USAGE}`);
  const compression = outputCompression(out);
  const format = (values.format ?? 'oci') as ExportFormat;
  if (format !== 'oci' && format !== 'docker') throw new UsageError(`--format: expected oci or docker, got ${JSON.stringify(values.format)}`);
  // The same image named twice is exported once.
  const refs = [...new Map(readImageRefs(positionals, values.file ?? [], USAGE).map((r) => [r.display, r])).values()];
  const filter = platformFilter(values.platform, values['all-platforms']);
  if (format === 'docker' && (filter.all || filter.platforms.length > 1)) throw new UsageError('--format docker holds one platform per image: name one with --platform');
  const config = loadCacheConfig(values.config);
  // With the archive on standard output, everything else goes to standard error.
  const report = out === '-' ? io.stderr : io.stdout;

  const cache = await openWorkingCache(config, cliLogger(config));
  const started = Date.now();
  try {
    const source = new CacheSource(cache);
    io.stderr.write(`exporting ${refs.length} image(s) from ${config.cache.dir} (${filter.all ? 'all platforms' : filter.platforms.map(formatPlatform).join(', ')})\n`);
    const { outcomes, images } = await collectImages(source, refs, filter, format, io.stderr);
    report.write(summary(outcomes, Date.now() - started).replace(/^warmed/, 'collected'));
    if (images.length !== refs.length) { io.stderr.write('nothing written: every image must be complete\n'); return 1; }
    const archive = TarOutput.create(out, compression);
    try {
      await writeArchive(archive, images, format, source);
      await archive.finish();
    } catch (e) {
      await archive.abort();
      throw e;
    }
    report.write(`wrote ${out === '-' ? 'standard output' : out}: ${images.length} image(s), ${format} format${compression === 'gzip' ? ', gzip' : ''}, ${archive.bytes} bytes\n`);
    return 0;
  } finally {
    await cache.close();
  }
}

function outputCompression(out: string): OutputCompression {
  if (/\.(tar\.zst|tzst|zst)$/.test(out)) throw new UsageError(`${out}: zstd is read by import but not written; use .tar or .tar.gz, or -o - | zstd -o ${out}`);
  return /\.(gz|tgz)$/.test(out) ? 'gzip' : 'none';
}
