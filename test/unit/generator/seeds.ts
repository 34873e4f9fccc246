// The seed tutorial's registries.yaml examples (test/fixtures/registries/seed-*.yaml), loaded as `--from` would.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadRegistriesFile } from '../../../src/config/load.js';
import type { MigrationInput } from '../../../src/generator/migrate.js';

export const FIXTURES = join(import.meta.dirname, '../../fixtures/registries');

export const SEEDS = readdirSync(FIXTURES).filter((f) => /^seed-.*\.yaml$/.test(f)).sort().map((f) => f.replace(/\.yaml$/, ''));

/** A seed as a migration to a proxy at `url`; `source` is the bare file name so golden files do not depend on cwd. */
export function seedMigration(seed: string, url = 'http://mirror.lan:5000'): MigrationInput {
  const { mirrors, configs } = loadRegistriesFile(join(FIXTURES, `${seed}.yaml`), { checkFiles: false });
  return { source: `${seed}.yaml`, mirrors, configs, url };
}
