// `ocimirror check FILE | --config FILE`: findings with line:col and the fix; exit 0 clean, 1 warnings, 2 errors.
import { readFileSync } from 'node:fs';
import { exitCode, formatJson, formatText, type Finding } from '../generator/check/findings.js';
import { checkOcimirrorConfigText } from '../generator/check/ocimirror-config.js';
import { checkRegistriesText } from '../generator/check/registries-file.js';
import { parseCommandArgs, UsageError } from './usage.js';

const USAGE = `usage: ocimirror check FILE [--format text|json] [--no-files]
       ocimirror check --config FILE [--format text|json] [--no-files]

  FILE           a K3s registries.yaml
  --config FILE  ocimirror's own configuration (its mirrors/configs, and a registries: file it names)
  --format json  one JSON document ({findings, summary, exitCode}) for CI
  --no-files     skip checking that TLS files exist and parse (when checking away from the node that has them)

exit status: 0 no problems (info only), 1 warnings, 2 errors`;

export async function checkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    options: { config: { type: 'string' }, format: { type: 'string' }, 'no-files': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--format expects text or json, got ${JSON.stringify(format)}`);
  if (positionals.length + (values.config ? 1 : 0) !== 1) throw new UsageError(`expected one FILE or --config FILE\n\n${USAGE}`);
  const file = values.config ?? (positionals[0] as string);
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    process.stderr.write(`ocimirror check: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  const opts = { checkFiles: !values['no-files'], base: process.cwd() };
  const findings: Finding[] = values.config ? checkOcimirrorConfigText(file, text, opts) : checkRegistriesText(file, text, opts);
  if (format === 'json') process.stdout.write(formatJson(findings));
  else if (findings.length > 0) process.stdout.write(formatText(findings));
  else process.stderr.write(`${file}: no problems found\n`);
  return exitCode(findings);
}
