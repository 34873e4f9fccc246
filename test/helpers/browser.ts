// Debian's headless Chromium driven by playwright-core (no browser download: executablePath), started with the
// flags that keep it off the network here, and a folder for the screenshots tests keep as artifacts.
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.OCIMIRROR_CHROMIUM ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps trying to reach Google's hosts, which fail here.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions', '--mute-audio'];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/setup-test-host.sh installs Debian's chromium`);
  // playwright gives each launch a fresh, empty profile of its own.
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, chromiumSandbox: false });
}

/** Where tests put screenshots (OCIMIRROR_TEST_ARTIFACTS, default test-artifacts/ in the checkout); created. */
export function artifactPath(name: string): string {
  const dir = resolve(process.env.OCIMIRROR_TEST_ARTIFACTS ?? join(import.meta.dirname, '..', '..', 'test-artifacts'));
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
