// What `warm` prints while it works: on a terminal one line per image, redrawn in place (layers, bytes, speed);
// otherwise (CI logs, pipes) plain lines that are never rewritten. The summary is the same for both.
import type { WarmPlan, WarmProgress } from './walk.js';

export interface Output { write(text: string): unknown; isTTY?: boolean }

export interface ImageOutcome {
  image: string;
  ok: boolean;
  digest?: string;
  blobs: number;
  bytes: number;
  ms: number;
  error?: string;
  missing?: string[];
}

export interface ImageReporter extends WarmProgress {
  done(outcome: ImageOutcome): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatSpeed(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? Math.round((bytes * 1000) / ms) : bytes)}/s`;
}

/** A reporter for one image, chosen by whether `out` is a terminal. */
export function imageReporter(out: Output, image: string): ImageReporter {
  return out.isTTY ? new TtyReporter(out, image) : new PlainReporter(out, image);
}

class PlainReporter implements ImageReporter {
  private plan: WarmPlan | undefined;
  private blobsDone = 0;

  constructor(private readonly out: Output, private readonly image: string) {
    out.write(`${image}: resolving\n`);
  }

  planned(plan: WarmPlan): void {
    this.plan = plan;
    const platforms = plan.platforms.length ? ` for ${plan.platforms.join(', ')}` : '';
    this.out.write(`${this.image}: ${plan.manifests} manifest(s)${platforms}, ${plan.blobs} blob(s), ${formatBytes(plan.bytes)}\n`);
    if (plan.missing.length) this.out.write(`${this.image}: not in the index, skipped: ${plan.missing.join(', ')}\n`);
  }

  bytes(): void { /* plain output reports whole blobs only */ }

  blobDone(digest: string, size: number): void {
    this.blobsDone++;
    this.out.write(`${this.image}: blob ${digest.slice(0, 19)} ${formatBytes(size)} (${this.blobsDone}/${this.plan?.blobs ?? '?'})\n`);
  }

  done(o: ImageOutcome): void {
    this.out.write(o.ok
      ? `${this.image}: done, ${o.blobs} blob(s), ${formatBytes(o.bytes)} in ${(o.ms / 1000).toFixed(1)}s (${formatSpeed(o.bytes, o.ms)})\n`
      : `${this.image}: FAILED: ${o.error}\n`);
  }
}

const REDRAW_MS = 100;

class TtyReporter implements ImageReporter {
  private plan: WarmPlan | undefined;
  private blobsDone = 0;
  private received = 0;
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(private readonly out: Output, private readonly image: string) {
    this.draw('resolving…', true);
  }

  planned(plan: WarmPlan): void {
    this.plan = plan;
    this.redraw(true);
  }

  bytes(n: number): void {
    this.received += n;
    this.redraw(false);
  }

  blobDone(): void {
    this.blobsDone++;
    this.redraw(true);
  }

  done(o: ImageOutcome): void {
    const text = o.ok
      ? `✓ ${this.image}  ${o.blobs} blobs  ${formatBytes(o.bytes)}  ${(o.ms / 1000).toFixed(1)}s  ${formatSpeed(o.bytes, o.ms)}`
      : `✗ ${this.image}  FAILED: ${o.error}`;
    this.out.write(`\r\x1b[K${text}\n`);
    if (o.ok && o.missing?.length) this.out.write(`  not in the index, skipped: ${o.missing.join(', ')}\n`);
  }

  private redraw(force: boolean): void {
    if (!this.plan) return;
    const ms = Date.now() - this.started;
    this.draw(`blobs ${this.blobsDone}/${this.plan.blobs}  ${formatBytes(this.received)}/${formatBytes(this.plan.bytes)}  ${formatSpeed(this.received, ms)}`, force);
  }

  // Throttled: a fast local proxy delivers thousands of chunks a second, and a terminal cannot keep up with that.
  private draw(status: string, force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.out.write(`\r\x1b[K… ${this.image}  ${status}`);
  }
}

export function summary(outcomes: ImageOutcome[], ms: number): string {
  const ok = outcomes.filter((o) => o.ok);
  const failed = outcomes.filter((o) => !o.ok);
  const bytes = ok.reduce((a, o) => a + o.bytes, 0);
  const blobs = ok.reduce((a, o) => a + o.blobs, 0);
  const width = Math.max(...outcomes.map((o) => o.image.length), 5);
  const lines = [
    `warmed ${ok.length} of ${outcomes.length} image(s): ${blobs} blob(s), ${formatBytes(bytes)} in ${(ms / 1000).toFixed(1)}s (${formatSpeed(bytes, ms)})`,
    ...outcomes.map((o) => (o.ok
      ? `  ok      ${o.image.padEnd(width)}  ${o.digest ?? ''}  ${o.blobs} blob(s)  ${formatBytes(o.bytes)}`
      : `  FAILED  ${o.image.padEnd(width)}  ${o.error}`)),
  ];
  if (failed.length) lines.push(`${failed.length} image(s) failed`);
  return `${lines.join('\n')}\n`;
}
