// A small schema walker over the YAML AST: every mistake is reported with file:line:col, the key path and
// what was expected ("expected X, got Y"), and unknown keys are errors (K3s ignores them silently).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import { parseDuration } from './units.js';

/** Configuration, registries and htpasswd files are read whole: none has a reason to be larger than this. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/**
 * A configuration file's text, its size checked before anything is read; `what` names it in the error
 * ("the configuration", "registries file").
 */
export function readConfigFile(file: string, what: string): string {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch (e) {
    throw new ConfigError([`${file}: cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new ConfigError([`${file}: expected ${what} to be a file, got a ${stats.isDirectory() ? 'directory' : 'special file'}`]);
    if (stats.size > MAX_CONFIG_FILE_BYTES) throw new ConfigError([`${file}: expected ${what} of at most ${MAX_CONFIG_FILE_BYTES} bytes, got ${stats.size}`]);
    const buf = Buffer.alloc(stats.size);
    let read = 0;
    while (read < stats.size) {
      const n = readSync(fd, buf, read, stats.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buf.toString('utf8', 0, read);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError([`${file}: cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  } finally {
    closeSync(fd);
  }
}

export interface Position { line: number; col: number }

/** Sort key of a "file:line:col: …" problem, so they are reported in file order. */
function position(problem: string): number {
  const m = /^[^:]*:(\d+):(\d+):/.exec(problem);
  return m ? Number(m[1]) * 10_000 + Number(m[2]) : 0;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    const sorted = [...problems].sort((a, b) => position(a) - position(b));
    super(sorted.join('\n'));
    this.problems = sorted;
    this.name = 'ConfigError';
  }
}

export class Walker {
  readonly problems: string[] = [];
  constructor(readonly file: string, private readonly lines: LineCounter) {}

  pos(node: Node | null | undefined): Position {
    const offset = node?.range?.[0] ?? 0;
    return this.lines.linePos(offset);
  }

  fail(node: Node | null | undefined, path: string, message: string): undefined {
    const { line, col } = this.pos(node);
    this.problems.push(`${this.file}:${line}:${col}: ${path || '(top level)'}: ${message}`);
    return undefined;
  }

  /** Returns the map's pairs by key, reporting keys that are not in `known`. */
  fields(node: Node | null | undefined, path: string, known: readonly string[]): Map<string, Pair<Node, Node | null>> | undefined {
    if (node == null || (isScalar(node) && node.value == null)) return new Map();
    if (!isMap(node)) return this.fail(node, path, `expected a mapping, got ${describe(node)}`);
    const out = new Map<string, Pair<Node, Node | null>>();
    for (const pair of (node as YAMLMap<Node, Node | null>).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) { this.fail(pair.key, path, 'expected a plain key'); continue; }
      if (known.length > 0 && !known.includes(key)) {
        this.fail(pair.key, join(path, key), `unknown key; expected one of ${known.join(', ')}`);
        continue;
      }
      out.set(key, pair);
    }
    return out;
  }

  str(node: Node | null | undefined, path: string): string | undefined {
    if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) {
      return this.fail(node, path, `expected a string, got ${describe(node)}`);
    }
    return String(node.value);
  }

  duration(node: Node | null | undefined, path: string): number | undefined {
    const s = this.str(node, path);
    const ms = s === undefined ? undefined : parseDuration(s);
    if (s !== undefined && ms === undefined) this.fail(node, path, `expected a duration like "5s", "250ms" or "1m30s", got ${JSON.stringify(s)}`);
    return ms;
  }

  /** "file:line:col" of a node, for messages that point back at the configuration. */
  at(node: Node | null | undefined): string {
    const { line, col } = this.pos(node);
    return `${this.file}:${line}:${col}`;
  }

  bool(node: Node | null | undefined, path: string): boolean | undefined {
    if (!isScalar(node) || typeof node.value !== 'boolean') return this.fail(node, path, `expected true or false, got ${describe(node)}`);
    return node.value;
  }

  int(node: Node | null | undefined, path: string, min: number, max: number): number | undefined {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      return this.fail(node, path, `expected an integer, got ${describe(node)}`);
    }
    if (node.value < min || node.value > max) return this.fail(node, path, `expected an integer from ${min} to ${max}, got ${node.value}`);
    return node.value;
  }

  strList(node: Node | null | undefined, path: string): string[] | undefined {
    if (node == null || (isScalar(node) && node.value == null)) return [];
    if (!isSeq(node)) return this.fail(node, path, `expected a list of strings, got ${describe(node)}`);
    const out: string[] = [];
    node.items.forEach((item, i) => {
      const s = this.str(item as Node, `${path}[${i}]`);
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  /**
   * A mapping whose keys are free (registry names, endpoint hosts), each value checked by `each`. The result has no
   * prototype: a key like "__proto__" or "constructor" is an entry like any other, and no inherited name is one.
   */
  record<T>(node: Node | null | undefined, path: string, each: (value: Node | null, key: string, keyNode: Node) => T | undefined): Record<string, T> | undefined {
    const pairs = this.fields(node, path, []);
    if (!pairs) return undefined;
    const out = Object.create(null) as Record<string, T>;
    for (const [key, pair] of pairs) {
      const v = each(pair.value, key, pair.key);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }
}

export function join(path: string, key: string): string {
  const k = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${k}` : k;
}

export function describe(node: Node | null | undefined): string {
  if (node == null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v == null) return 'null';
    if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
    return `${typeof v} ${String(v)}`;
  }
  return 'an unsupported value';
}
