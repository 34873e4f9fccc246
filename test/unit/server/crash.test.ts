// Issue 8 rule 13: an uncaught exception or an unhandled rejection is logged at fatal and the process exits non-zero.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function crashChild(fault: string): { status: number | null; lines: { level: number; msg: string; err?: { message?: string } }[] } {
  const script = `
    import { createLogger } from ${JSON.stringify(join(process.cwd(), 'src/server/logger.ts'))};
    import { exitOnCrash } from ${JSON.stringify(join(process.cwd(), 'src/server/crash.ts'))};
    exitOnCrash(createLogger('info'));
    ${fault}
    setTimeout(() => console.log('{"level":30,"msg":"still running"}'), 3000);`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const lines = child.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
  return { status: child.status, lines };
}

describe('crash-only', () => {
  it.each([
    ['an unhandled rejection', "Promise.reject(new Error('boom'));", /unhandled promise rejection/],
    ['an uncaught exception', "setTimeout(() => { throw new Error('boom'); }, 10);", /uncaught exception/],
  ])('%s is logged at fatal and the process exits 70', (_what, fault, msg) => {
    const { status, lines } = crashChild(fault);
    expect(status).toBe(70);
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]?.msg).toMatch(msg);
    expect(fatal[0]?.err?.message).toBe('boom');
    expect(lines.map((l) => l.msg)).not.toContain('still running');
  });
});
