// ocimirror warm IMAGE... [--file LIST] [--platform P,P | --all-platforms] [--proxy URL | --config FILE] [--ca-file PEM]
// Thin: parse, then pull each image through a running proxy so its manifests and blobs are cached before they
// are needed (before an uplink outage, or before a fleet of nodes asks at once).
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { policiesOf } from '../config/policies.js';
import { ProxyClient } from '../warm/proxy-client.js';
import { imageReporter, summary, type ImageOutcome, type Output } from '../warm/progress.js';
import { ImageRefError, parseImageList, parseImageRef, type ImageRef } from '../warm/reference.js';
import { formatPlatform, hostPlatform, parsePlatform, warmImage, type PlatformFilter } from '../warm/walk.js';
import { parseCommandArgs, UsageError } from './usage.js';

const DEFAULT_PROXY = 'http://127.0.0.1:5000';

const USAGE = `usage: ocimirror warm IMAGE... [options]

Pulls images through a running ocimirror so their manifests and blobs are in its cache.
IMAGE is a reference as nodes name it: alpine (= docker.io/library/alpine:latest), ghcr.io/org/app:1.2,
127.0.0.1:5000/x/y@sha256:<hex>. The registry must be configured on the proxy.

options:
  -f, --file LIST          read more references from LIST, one per line (# comments)
  -p, --platform P[,P...]  platforms of a multi-arch image to warm, e.g. linux/amd64,linux/arm64
                           (default: this machine's, ${formatPlatform(hostPlatform())})
      --all-platforms      every manifest of a multi-arch image
      --proxy URL          the proxy (default: server.url of --config, else ${DEFAULT_PROXY})
  -c, --config FILE        the proxy's ocimirror.yaml, to find server.url (and refuse images its
                           policies or allowRepositories deny, without asking the proxy)
      --ca-file PEM        CA certificate that signed an https proxy's certificate

Exit status: 0 when every image was warmed, 1 when any failed, 2 on a usage error.`;

export interface WarmIo { stdout: Output; stderr: Output }

export async function warmCommand(argv: string[], io: WarmIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    options: {
      file: { type: 'string', short: 'f', multiple: true }, platform: { type: 'string', short: 'p', multiple: true },
      'all-platforms': { type: 'boolean' }, proxy: { type: 'string' }, config: { type: 'string', short: 'c' },
      'ca-file': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) { io.stdout.write(`${USAGE}\n`); return 0; }

  const refs = readImageRefs(positionals, values.file ?? [], USAGE);
  const filter = platformFilter(values.platform, values['all-platforms']);
  const config = values.config ? loadConfig(values.config, { checkFiles: false }) : undefined;
  const proxyUrl = values.proxy ?? config?.server.url ?? DEFAULT_PROXY;
  // Without --config the proxy itself refuses a denied image (403 DENIED) before any upstream request.
  const policies = config ? policiesOf(config) : undefined;

  let client: ProxyClient;
  try { client = new ProxyClient(proxyUrl, values['ca-file'] ? { caFile: values['ca-file'] } : {}); } catch (e) { throw new UsageError((e as Error).message); }
  const started = Date.now();
  const outcomes: ImageOutcome[] = [];
  io.stderr.write(`warming ${refs.length} image(s) through ${client.url} (${filter.all ? 'all platforms' : filter.platforms.map(formatPlatform).join(', ')})\n`);
  try {
    for (const ref of refs) {
      const reporter = imageReporter(io.stderr, ref.display);
      const t0 = Date.now();
      let outcome: ImageOutcome;
      const access = policies?.access(ref.registry, ref.repo);
      if (access && !access.allowed) {
        outcome = { image: ref.display, ok: false, blobs: 0, bytes: 0, ms: 0, error: `refused by the configuration: ${access.reason}` };
        reporter.done(outcome);
        outcomes.push(outcome);
        continue;
      }
      try {
        const r = await warmImage(client, ref, filter, reporter);
        outcome = { image: ref.display, ok: true, digest: r.digest, blobs: r.plan.blobs, bytes: r.bytes, ms: Date.now() - t0, missing: r.plan.missing };
      } catch (e) {
        outcome = { image: ref.display, ok: false, blobs: 0, bytes: 0, ms: Date.now() - t0, error: (e as Error).message };
      }
      reporter.done(outcome);
      outcomes.push(outcome);
    }
  } finally {
    await client.close();
  }
  io.stdout.write(summary(outcomes, Date.now() - started));
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

/** IMAGE arguments and --file lists; every reference is checked before anything is fetched (a typo on line 40 should not wait for 39 pulls). */
export function readImageRefs(positionals: string[], files: string[], usage: string): ImageRef[] {
  const texts = [...positionals];
  for (const file of files) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (e) { throw new UsageError(`--file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    texts.push(...parseImageList(text));
  }
  if (texts.length === 0) throw new UsageError(`expected at least one IMAGE or --file LIST\n\n${usage}`);
  return texts.map((t) => {
    try { return parseImageRef(t); } catch (e) { if (e instanceof ImageRefError) throw new UsageError(e.message); throw e; }
  });
}

export function platformFilter(platforms: string[] | undefined, all: boolean | undefined): PlatformFilter {
  if (all && platforms?.length) throw new UsageError('--platform and --all-platforms are alternatives');
  if (all) return { all: true };
  if (!platforms?.length) return { all: false, platforms: [hostPlatform()] };
  try {
    return { all: false, platforms: platforms.flatMap((p) => p.split(',')).filter((p) => p.trim()).map(parsePlatform) };
  } catch (e) {
    throw new UsageError(`--platform: ${(e as Error).message}`);
  }
}
