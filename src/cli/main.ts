// argv → serve | generate | check | warm | export | import | cache. Thin: parse, call, print; exit codes are returned, not thrown.
import { ConfigError } from '../config/validate.js';
import { UsageError } from './usage.js';

const USAGE = `usage: ocimirror <command> [options]

commands:
  serve     --config FILE [--listen HOST:PORT]      run the proxy
  generate  k3s | hosts-toml | registries-conf | daemon-json [options]   write node-side client configs
  check     FILE | --config FILE [--format json]    find mistakes in a registries.yaml or an ocimirror config
  warm      IMAGE... [--file LIST] [--proxy URL]    bring images into the cache
  export    -o OUT IMAGE... [--format oci|docker]   write cached images into an archive (air-gapped sites)
  import    TARBALL...                              store the images of archives in the cache
  cache     list | rm IMAGE... | prune --older-than 30d   show and free what is cached

Run 'ocimirror <command> --help' for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS = new Map<string, () => Promise<Command>>([
  ['serve', async () => (await import('./serve.js')).serveCommand],
  ['generate', async () => (await import('./generate.js')).generateCommand],
  ['check', async () => (await import('./check.js')).checkCommand],
  ['warm', async () => (await import('./warm.js')).warmCommand],
  ['export', async () => (await import('./export.js')).exportCommand],
  ['import', async () => (await import('./import.js')).importCommand],
  ['cache', async () => (await import('./cache.js')).cacheCommand],
]);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : 2;
  }
  const load = COMMANDS.get(name);
  if (!load) {
    process.stderr.write(`ocimirror: unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`ocimirror: invalid configuration:\n${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`ocimirror ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
