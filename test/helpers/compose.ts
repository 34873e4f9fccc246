// docker-compose (v1.29, Debian's) against podman's Docker-compatible API: `podman system service` on a socket of
// our own, started and stopped by PID. Chosen over podman-compose 1.0.3, which turns a CMD healthcheck into a
// broken `/bin/sh -c` line, merges override files by its own rules and leaves project networks behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { runTool, type ToolResult } from './containerd.js';
import { podmanEnv } from './containers.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from './tmp.js';

export interface Compose {
  readonly socket: string;
  /** `docker-compose ARGS` with DOCKER_HOST at podman's socket and `env` added. */
  run(args: string[], env?: Record<string, string>): Promise<ToolResult>;
  close(): Promise<void>;
}

const services = new Set<ChildProcess>();
atProcessExit(() => { for (const s of services) s.kill('SIGKILL'); });

export async function startCompose(): Promise<Compose> {
  const dir = makeTmpDir('ocimirror-podman-api-');
  const socket = join(dir, 'podman.sock');
  const service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
    env: { ...process.env, ...podmanEnv() }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  services.add(service);
  let stderr = '';
  service.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });
  const exited = new Promise<void>((resolve) => service.once('exit', () => { services.delete(service); resolve(); }));
  const agent = new Agent({ connect: { socketPath: socket } });
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      const ping = await request('http://podman/_ping', { dispatcher: agent }).then((r) => r.body.text(), () => undefined);
      if (ping === 'OK') break;
      if (service.exitCode !== null || Date.now() > deadline) throw new Error(`podman system service did not answer on ${socket}:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await agent.close();
  }
  return {
    socket,
    run: (args, env = {}) => runTool('docker-compose', args, {
      env: { ...podmanEnv(), DOCKER_HOST: `unix://${socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1', ...env }, timeoutMs: 600_000,
    }),
    async close() {
      if (service.exitCode === null) service.kill('SIGTERM');
      await exited;
      await removeTmpDir(dir);
    },
  };
}
