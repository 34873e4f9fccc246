// ocimirror serve --config FILE [--listen HOST:PORT]
import { loadConfig } from '../config/load.js';
import { exitOnCrash } from '../server/crash.js';
import { tuneHeapGrowth } from '../server/heap.js';
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
  tuneHeapGrowth();
  const proxy = await startProxy(config, { logger });
  await new Promise<void>((resolve) => {
    // A second signal during the grace period ends it at once (an impatient Ctrl-C, or an orchestrator's retry).
    const endGrace = new AbortController();
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) { endGrace.abort(); return; }
      stopping = true;
      const graceMs = config.server.shutdownGraceMs;
      proxy.logger.info({ signal, graceMs }, 'shutting down: no new connections; in-flight responses may finish');
      proxy.close({ graceMs, endGrace: endGrace.signal }).then(
        (r) => proxy.logger.info(r, 'stopped'),
        (err: unknown) => proxy.logger.error({ err }, 'shutdown failed'),
      ).finally(resolve);
    };
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(signal));
  });
  return 0;
}
