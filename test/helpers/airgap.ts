// For the air-gap suites: a configuration file that points the CLI commands (export, import, cache) at a cache
// directory and mirrors, and those commands run in-process with their output captured.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { cacheCommand } from '../../src/cli/cache.js';
import { exportCommand } from '../../src/cli/export.js';
import { importCommand } from '../../src/cli/import.js';
import { parseConfig } from '../../src/config/load.js';
import { assertLoopbackConfig } from './proxy.js';

export class Capture {
  text = '';
  constructor(readonly isTTY = false) {}
  write(s: string): boolean { this.text += s; return true; }
}

/** Writes `<dir>/<name>.yaml` for `cacheDir`, each registry mirrored by the given loopback endpoints. */
export function writeCacheConfig(dir: string, name: string, cacheDir: string, mirrors: Record<string, string[]>, extra: Record<string, unknown> = {}): string {
  const text = YAML.stringify({ ...extra, cache: { ...(extra.cache as object | undefined), dir: cacheDir }, mirrors: Object.fromEntries(Object.entries(mirrors).map(([r, endpoint]) => [r, { endpoint }])) });
  assertLoopbackConfig(parseConfig(`${name}.yaml`, text));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

export interface CliRun { code: number; out: string; err: string }

const COMMANDS = { export: exportCommand, import: importCommand, cache: cacheCommand };

export async function runCli(command: keyof typeof COMMANDS, argv: string[]): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await COMMANDS[command](argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}
