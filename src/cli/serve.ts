// ocimirror serve --config FILE [--listen HOST:PORT]
import { loadConfig } from '../config/load.js';
import { exitOnCrash } from '../server/crash.js';
import { createLogger } from '../server/logger.js';
import { startProxy } from '../server/start.js';
import { parseCommandArgs, UsageError } from './usage.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, listen: { type: 'string', short: 'l' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: ocimirror serve --config FILE [--listen HOST:PORT]\n');
    return 0;
  }
  if (!values.config) throw new UsageError('--config FILE is required (try config/ocimirror.yaml)');
  const config = loadConfig(values.config, values.listen ? { listen: values.listen } : {});
  const logger = createLogger(config.log.level);
  exitOnCrash(logger);
  const proxy = await startProxy(config, { logger });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      proxy.logger.info({ signal }, 'shutting down');
      proxy.close().finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
