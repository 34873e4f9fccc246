// `ocimirror generate k3s | hosts-toml | registries-conf | daemon-json`: thin: parse argv, load, generate, write.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig, loadRegistriesFile } from '../config/load.js';
import { generateDaemonJson } from '../generator/daemon-json.js';
import { generateHostsToml } from '../generator/hosts-toml.js';
import { generateK3s, type K3sVersion } from '../generator/k3s.js';
import { generateProxyConfig, migrationTarget, type MigrationInput } from '../generator/migrate.js';
import { generateRegistriesConf } from '../generator/registries-conf.js';
import { GenerateError, type GeneratorInput, type ProxyAuth } from '../generator/target.js';
import { parseCommandArgs, UsageError } from './usage.js';

const USAGE = `usage: ocimirror generate <kind> (--config FILE | --from REGISTRIES_YAML --url URL) [options]

kinds:
  k3s              /etc/rancher/k3s/registries.yaml for K3s nodes
  hosts-toml       containerd <config_path>/<registry>/hosts.toml files (needs --out DIR)
  registries-conf  podman / CRI-O / skopeo registries.conf drop-in
  daemon-json      Docker daemon.json mirror keys (docker.io only)

options:
  --config FILE            the proxy's ocimirror.yaml: the registries it serves and server.url
  --from FILE              a node's existing registries.yaml instead of --config (k3s: migrates it, see below)
  --url URL                how nodes reach the proxy, http(s)://host[:port] (overrides server.url)
  --ca-file PATH           the proxy's CA certificate, as a path on the node (https proxy with a private CA)
  --auth-user USER         the proxy requires authentication (server.auth): nodes log in as USER, with the
                           password from the environment variable OCIMIRROR_PASSWORD (k3s, hosts-toml)
  -o, --output FILE        write to FILE instead of stdout
  k3s:              --fallback (keep the original endpoints after the proxy), --k3s v1.21|current,
                    --proxy-config-out FILE (with --from: where the proxy configuration goes; required)
  hosts-toml:       --out DIR, --no-fallback (the proxy is the only path)
  registries-conf:  --no-fallback`;

// A Map: a kind named "constructor" or "toString" on the command line is no kind at all.
const KINDS = new Map<string, readonly string[]>([
  ['k3s', ['fallback', 'k3s', 'proxy-config-out', 'output', 'auth-user']],
  ['hosts-toml', ['out', 'no-fallback', 'auth-user']],
  ['registries-conf', ['no-fallback', 'output']],
  ['daemon-json', ['output']],
]);

export async function generateCommand(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === '--help' || kind === '-h') { process.stdout.write(`${USAGE}\n`); return 0; }
  const kindOptions = kind ? KINDS.get(kind) : undefined;
  if (!kind || !kindOptions) throw new UsageError(`expected a kind (k3s, hosts-toml, registries-conf, daemon-json), got ${JSON.stringify(kind ?? '')}\n\n${USAGE}`);
  const { values } = parseCommandArgs({
    args: rest,
    options: {
      config: { type: 'string' }, from: { type: 'string' }, url: { type: 'string' }, 'ca-file': { type: 'string' }, 'auth-user': { type: 'string' },
      output: { type: 'string', short: 'o' }, fallback: { type: 'boolean' }, k3s: { type: 'string' },
      'proxy-config-out': { type: 'string' }, out: { type: 'string' }, 'no-fallback': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  const allowed = ['config', 'from', 'url', 'ca-file', 'help', ...kindOptions];
  const stray = Object.keys(values).filter((k) => !allowed.includes(k));
  if (stray.length > 0) throw new UsageError(`generate ${kind} does not take --${stray.join(', --')}`);

  const { input, migration } = readInput(values);
  const caFile = values['ca-file'];
  const auth = proxyAuth(values['auth-user']);
  try {
    switch (kind) {
      case 'k3s': return writeK3s(input, migration, { ...values, caFile, auth });
      case 'hosts-toml': {
        if (!values.out) throw new UsageError('generate hosts-toml needs --out DIR (one <registry>/hosts.toml per mirror)');
        for (const f of generateHostsToml(input, { caFile, auth, noFallback: values['no-fallback'] })) {
          const path = join(values.out, f.path);
          mkdirSync(dirname(path), { recursive: true });
          // With --auth-user the file holds the proxy password: readable by root only.
          writeFileSync(path, f.text, auth ? { mode: 0o600 } : {});
          process.stderr.write(`wrote ${path}\n`);
        }
        return 0;
      }
      case 'registries-conf': return emit(values.output, generateRegistriesConf(input, { caFile, noFallback: values['no-fallback'] }));
      default: {
        const daemon = generateDaemonJson(input, { caFile });
        for (const note of daemon.notes) process.stderr.write(`${note}\n`);
        return emit(values.output, daemon.text);
      }
    }
  } catch (e) {
    if (!(e instanceof GenerateError)) throw e;
    process.stderr.write(`ocimirror generate ${kind}: ${e.message}\n`);
    return 2;
  }
}

function readInput(values: { config?: string; from?: string; url?: string }): { input: GeneratorInput; migration?: MigrationInput } {
  if (values.config && values.from) {
    throw new UsageError('--config and --from are alternatives: --config reads the proxy\'s configuration, --from a node\'s registries.yaml');
  }
  if (values.from) {
    if (!values.url) throw new UsageError('--from needs --url URL: how nodes will reach the proxy');
    // Certificate paths in a node's file name files on the node, not here.
    const { mirrors, configs } = loadRegistriesFile(values.from, { checkFiles: false });
    const migration: MigrationInput = { source: values.from, mirrors, configs, url: values.url };
    return { input: migrationTarget(migration), migration };
  }
  if (!values.config) throw new UsageError('expected --config FILE (the proxy\'s configuration) or --from REGISTRIES_YAML with --url URL');
  // Node configs are often generated away from the proxy host, where its TLS files do not exist.
  const config = loadConfig(values.config, { checkFiles: false });
  return { input: values.url ? { ...config, server: { url: values.url } } : config };
}

function writeK3s(input: GeneratorInput, migration: MigrationInput | undefined,
  values: { output?: string; fallback?: boolean; k3s?: string; 'proxy-config-out'?: string; caFile?: string; auth?: ProxyAuth }): number {
  const k3s = values.k3s ?? 'current';
  if (k3s !== 'v1.21' && k3s !== 'current') throw new UsageError(`--k3s expects v1.21 or current, got ${JSON.stringify(k3s)}`);
  const proxyOut = values['proxy-config-out'];
  if (!migration) {
    if (proxyOut) throw new UsageError('--proxy-config-out only applies with --from (migrating a node\'s registries.yaml)');
    return emit(values.output, generateK3s(input, { caFile: values.caFile, auth: values.auth, fallback: values.fallback, k3s: k3s as K3sVersion }));
  }
  if (!proxyOut) throw new UsageError('--from writes two files: name the proxy configuration\'s with --proxy-config-out FILE');
  for (const [flag, path] of [['--proxy-config-out', proxyOut], ['-o', values.output]] as const) {
    if (path && resolve(path) === resolve(migration.source)) throw new UsageError(`${flag} would overwrite ${migration.source} before its mirrors are safe: choose another file`);
  }
  const notes = [`Migrated: the original mirrors and configs now live in the proxy configuration ${proxyOut}.`];
  const nodeFile = generateK3s(input, { caFile: values.caFile, auth: values.auth, fallback: values.fallback, k3s: k3s as K3sVersion, notes });
  // The proxy file first: it is the only copy of the original credentials once nodes get the new file.
  writeFileSync(proxyOut, generateProxyConfig(migration), { mode: 0o600 });
  process.stderr.write(`PROXY configuration (run \`ocimirror serve --config ${proxyOut}\` on the proxy host): ${proxyOut}\n`);
  process.stderr.write(`NODE file (install as /etc/rancher/k3s/registries.yaml on every node, then restart k3s): ${values.output ?? 'stdout'}\n`);
  return emit(values.output, nodeFile);
}

function emit(output: string | undefined, text: string): number {
  if (output) writeFileSync(output, text);
  else process.stdout.write(text);
  return 0;
}

/** The node's credentials for a proxy with server.auth; the password comes from the environment, never argv. */
function proxyAuth(user: string | undefined): ProxyAuth | undefined {
  if (user === undefined) return undefined;
  const password = process.env.OCIMIRROR_PASSWORD;
  if (!user || !password) throw new UsageError('--auth-user needs a user name and the password in the environment variable OCIMIRROR_PASSWORD');
  return { username: user, password };
}
