// node --import tsx bench/cpuprofile-summary.ts [--top N] [--skip-ms N] FILE.cpuprofile...
// A text flame summary of V8 CPU profiles (node --cpu-prof): time by group (ocimirror, undici, fastify, pino,
// other packages, node internals, native/V8, GC, idle), then the top functions by self time and by total time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const SPECIAL: Record<string, string> = { '(idle)': 'idle', '(garbage collector)': 'GC', '(program)': 'V8 (program)', '(root)': 'V8 (program)' };

/** Which part of the stack a frame belongs to, from its script URL. */
export function groupOf(frame: CallFrame): string {
  const special = SPECIAL[frame.functionName];
  if (special && !frame.url) return special;
  const url = frame.url;
  // Functions without a script: node's C++ bindings (writeBuffer, read) and V8 builtins.
  if (!url) return 'native bindings';
  if (url.startsWith('node:')) return 'node internals';
  if (url.startsWith('wasm://')) return 'undici'; // llhttp, undici's HTTP parser, is the only wasm here
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg === 'undici') return 'undici';
  if (pkg && /^(fastify|@fastify\/.*|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|toad-cache|process-warning|abstract-logging|secure-json-parse)$/.test(pkg)) return 'fastify';
  if (pkg && /^(pino|pino-std-serializers|sonic-boom|thread-stream|on-exit-leak-free|quick-format-unescaped|fast-redact|real-require|safe-stable-stringify)$/.test(pkg)) return 'pino';
  if (pkg) return `other: ${pkg}`;
  return 'ocimirror';
}

function frameName(frame: CallFrame, root: string): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  let where = frame.url.replace(/^file:\/\//, '');
  const nm = where.lastIndexOf('/node_modules/');
  if (nm >= 0) where = where.slice(nm + '/node_modules/'.length);
  else if (where.startsWith(root)) where = where.slice(root.length + 1);
  return `${name} ${where}:${frame.lineNumber + 1}`;
}

export interface Entry { name: string; group: string; selfMs: number; totalMs: number }
export interface Summary { file: string; wallMs: number; sampledMs: number; groups: Map<string, { selfMs: number; totalMs: number }>; functions: Entry[] }

/** `skipMs` leaves out the profile's first milliseconds (the process starting up). */
export function summarise(profile: CpuProfile, file: string, root: string, skipMs = 0): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Each node's stack as distinct functions (name → group) and groups: recursion counts once towards total time.
  const stacks = new Map<number, { names: Map<string, string>; groups: Set<string> }>();
  const stackOf = (id: number) => {
    let s = stacks.get(id);
    if (s) return s;
    const names = new Map<string, string>(); const groups = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (frame.functionName === '(root)') continue; // on every stack
      names.set(frameName(frame, root), groupOf(frame));
      groups.add(groupOf(frame));
    }
    s = { names, groups };
    stacks.set(id, s);
    return s;
  };
  const functions = new Map<string, Entry>();
  const groups = new Map<string, { selfMs: number; totalMs: number }>();
  const entry = (name: string, group: string) => {
    let e = functions.get(name);
    if (!e) functions.set(name, (e = { name, group, selfMs: 0, totalMs: 0 }));
    return e;
  };
  const group = (g: string) => {
    let e = groups.get(g);
    if (!e) groups.set(g, (e = { selfMs: 0, totalMs: 0 }));
    return e;
  };
  let sampledMs = 0;
  const { samples, timeDeltas } = profile;
  const meanMs = (profile.endTime - profile.startTime) / 1000 / Math.max(1, samples.length);
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    at += (timeDeltas[i] ?? 0) / 1000;
    if (at < skipMs) continue;
    // A sample stands for the time until the next one (the last one for the mean interval).
    const ms = i + 1 < timeDeltas.length ? timeDeltas[i + 1]! / 1000 : meanMs;
    const id = samples[i]!;
    const frame = byId.get(id)!.callFrame;
    sampledMs += ms;
    entry(frameName(frame, root), groupOf(frame)).selfMs += ms;
    group(groupOf(frame)).selfMs += ms;
    if (groupOf(frame) === 'idle') continue;
    const stack = stackOf(id);
    for (const [name, g] of stack.names) entry(name, g).totalMs += ms;
    for (const g of stack.groups) group(g).totalMs += ms;
  }
  return { file, wallMs: (profile.endTime - profile.startTime) / 1000 - skipMs, sampledMs, groups, functions: [...functions.values()] };
}

const pct = (ms: number, of: number) => `${((100 * ms) / of).toFixed(1).padStart(5)} %`;
const msText = (ms: number) => `${ms.toFixed(0).padStart(7)} ms`;
const NOT_WORK = new Set(['idle']);

/** The text report: groups, then the top functions by self and by total time, as shares of the busy (non-idle) time. */
export function render(s: Summary, top: number): string {
  const idle = s.groups.get('idle')?.selfMs ?? 0;
  const busy = s.sampledMs - idle;
  const lines = [
    `${s.file}: ${(s.wallMs / 1000).toFixed(2)} s profiled, ${(busy / 1000).toFixed(2)} s busy (${pct(busy, s.sampledMs).trim()} of the samples), idle ${(idle / 1000).toFixed(2)} s; shares below are of busy time`,
    '',
    `  ${'group'.padEnd(26)}${'self'.padStart(10)}${''.padStart(8)}${'total (on the stack)'.padStart(30)}`,
  ];
  const groups = [...s.groups.entries()].filter(([g]) => !NOT_WORK.has(g)).sort((a, b) => b[1].selfMs - a[1].selfMs);
  for (const [g, v] of groups) lines.push(`  ${g.padEnd(26)}${msText(v.selfMs)} ${pct(v.selfMs, busy)}${msText(v.totalMs).padStart(22)} ${pct(v.totalMs, busy)}`);
  const table = (title: string, key: 'selfMs' | 'totalMs', filter: (e: Entry) => boolean) => {
    lines.push('', `  top ${top} by ${title}:`, `  ${'self'.padStart(18)}${'total'.padStart(19)}  ${'group'.padEnd(16)}function`);
    const rows = s.functions.filter(filter).sort((a, b) => b[key] - a[key]).slice(0, top);
    for (const e of rows) lines.push(`  ${msText(e.selfMs)} ${pct(e.selfMs, busy)} ${msText(e.totalMs)} ${pct(e.totalMs, busy)}  ${e.group.padEnd(16)}${e.name}`);
  };
  table('self time', 'selfMs', (e) => !NOT_WORK.has(e.group));
  // The root and the event loop's entry points are on every stack: they say nothing.
  table('total time', 'totalMs', (e) => e.group !== 'idle' && !/^\((root|program)\)$/.test(e.name) && e.totalMs < 0.98 * busy);
  table('total time, ocimirror code only', 'totalMs', (e) => e.group === 'ocimirror');
  return lines.join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, 'skip-ms': { type: 'string' } } });
  const top = Number(values.top ?? 25);
  const skipMs = Number(values['skip-ms'] ?? 0);
  if (positionals.length === 0 || !Number.isInteger(top) || top < 1 || !(skipMs >= 0)) {
    process.stderr.write('usage: node --import tsx bench/cpuprofile-summary.ts [--top N] [--skip-ms N] FILE.cpuprofile...\n');
    process.exitCode = 2;
    return;
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const out = positionals.map((file) => render(summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, file, root, skipMs), top));
  process.stdout.write(`${out.join('\n\n')}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
