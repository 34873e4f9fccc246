// What the cache commands (export, import, cache) share: the configuration they find the cache by, and a logger
// that writes to standard error (standard output may be an archive: `export -o -`).
import pino, { type Logger } from 'pino';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../server/logger.js';

export const DEFAULT_CONFIG = 'ocimirror.yaml';

export function loadCacheConfig(file: string | undefined): Config {
  return loadConfig(file ?? DEFAULT_CONFIG, { checkFiles: false });
}

export function cliLogger(config: Config): Logger {
  const level = ['trace', 'debug', 'info'].includes(config.log.level) ? 'warn' : config.log.level;
  return createLogger(level, pino.destination(2));
}
