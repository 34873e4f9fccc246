// ocimirror import [--config FILE] TARBALL...
// Thin: parse, import each archive into the configured cache, print what became pullable and what did not.
import { join } from 'node:path';
import { ArchiveError } from '../archive/archive-error.js';
import { importArchive, type ArchiveReport } from '../airgap/import-archive.js';
import { openCacheStores } from '../cache/open-stores.js';
import type { Config } from '../config/schema.js';
import { formatBytes, type Output } from '../warm/progress.js';
import { cliLogger, DEFAULT_CONFIG, loadCacheConfig } from './cache-config.js';
import { parseCommandArgs, UsageError } from './usage.js';

const USAGE = `usage: ocimirror import [--config FILE] TARBALL...

Stores the images of each archive in the cache, every manifest and blob checked against its digest, and maps
their tags so nodes pull them with every upstream down (until an upstream answers for the tag again).
Reads OCI layouts (ctr export, skopeo oci-archive:, ocimirror export), docker save / podman save archives and
K3s's k3s-airgap-images-<arch>.tar, plain or compressed with gzip or zstd. A running ocimirror on the same
cache serves the imported images without a restart.

options:
  -c, --config FILE   ocimirror's configuration (default ./${DEFAULT_CONFIG}): where the cache is

Exit status: 0 when every image was imported, 1 when any archive or image was not, 2 on a usage error.`;

export interface ImportIo { stdout: Output; stderr: Output }

export async function importCommand(argv: string[], io: ImportIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) { io.stdout.write(`${USAGE}\n`); return 0; }
  if (positionals.length === 0) throw new UsageError(`expected at least one TARBALL\n\n${USAGE}`);
  const config = loadCacheConfig(values.config);
  const { stores, close } = await openCacheStores(config, cliLogger(config), { cli: true });
  let ok = true;
  try {
    for (const file of positionals) {
      let report: ArchiveReport;
      try {
        report = await importArchive(file, stores, { spoolDir: join(config.cache.dir, 'tmp') });
      } catch (e) {
        if (!(e instanceof ArchiveError) && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        io.stderr.write(`${file}: FAILED, nothing imported: ${(e as Error).message}\n`);
        ok = false;
        continue;
      }
      printReport(report, config, io);
      if (report.failed.length) ok = false;
    }
  } finally {
    close();
  }
  return ok ? 0 : 1;
}

function printReport(r: ArchiveReport, config: Config, io: ImportIo): void {
  const unconfigured = new Set<string>();
  for (const i of r.imported) {
    io.stdout.write(`${r.file}: imported ${i.tags.join(', ') || i.label} ${i.digest} (${i.blobs} blob(s), ${formatBytes(i.bytes)})\n`);
    if (i.skipped.length) io.stdout.write(`  platforms not in the archive: ${i.skipped.join(', ')}\n`);
    for (const note of i.notes) io.stdout.write(`  note: ${note}\n`);
    for (const t of i.tags) {
      const registry = t.slice(0, t.indexOf('/'));
      if (!(registry in config.mirrors) && !('*' in config.mirrors)) unconfigured.add(registry);
    }
  }
  for (const f of r.failed) io.stderr.write(`${r.file}: FAILED ${f.label}: ${f.problem}\n`);
  for (const registry of unconfigured) {
    io.stderr.write(`${r.file}: warning: ${registry} is not in mirrors: of ${config.source}; nodes cannot pull its imported tags until it is (an empty endpoint list will do)\n`);
  }
  io.stdout.write(`${r.file}: ${r.imported.length} image(s) imported${r.failed.length ? `, ${r.failed.length} failed` : ''}\n`);
}
