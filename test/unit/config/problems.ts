// The problems a configuration is refused with (file:line:col lines); fails the test if it loads.
import { expect } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';

export function problems(yaml: string): readonly string[] {
  try {
    parseConfig('c.yaml', yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}
