// diocp start --dispatch remote --bind … and diocp worker, as a user runs them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, ServerProcess } from '../cli/helpers.js';
import { failureWorkerConfig, tempDir, WorkerProcess } from './helpers.js';

describe('diocp start --dispatch remote + diocp worker', () => {
  let dir = '';
  let cleanup = async () => {};
  const procs: (ServerProcess | WorkerProcess)[] = [];
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await cleanup();
  });

  it('serves calls through a worker; both stop on SIGTERM with exit 0', async () => {
    const { config } = await failureWorkerConfig(dir);
    const gateway = new ServerProcess(['--config', config, '--port', '0', '--transport', 'net', '--dispatch', 'remote', '--bind', 'tcp://127.0.0.1:*'], dir);
    procs.push(gateway);
    const listening = await gateway.listening();
    expect(listening.dispatch).toBe('remote');
    expect(listening.msg).toMatch(/workers connect to tcp:\/\/127\.0\.0\.1:\d+/);
    const endpoint = listening.remote as string;
    const worker = new WorkerProcess(['--connect', endpoint, '--config', config, '--name', 'cli-worker'], dir);
    procs.push(worker);
    await gateway.waitForLine((l) => l.msg === 'remote dispatch: worker ready' && l.worker === 'cli-worker');
    const reply = await runCli(['call', '--port', String(listening.port), '0x33'], { cwd: dir });
    expect(reply.code).toBe(0);
    expect(reply.stdout.trim()).toBe(String(worker.pid));

    expect(await worker.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    await gateway.waitForLine((l) => l.msg === 'remote dispatch: worker left');
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
  });

  it('workers come back by themselves to a gateway restarted after kill -9', async () => {
    // The gateway reads remote.heartbeatMs from the file; workers take it from its WELCOME.
    const { config } = await failureWorkerConfig(dir, { remote: { heartbeatMs: 200 } });
    const start = async (bind: string) => {
      const g = new ServerProcess(['--config', config, '--port', '0', '--transport', 'net', '--dispatch', 'remote', '--bind', bind], dir);
      procs.push(g);
      await g.listening();
      return g;
    };
    // A fixed port below the ephemeral range (see failover.test.ts), retried if taken.
    let first: ServerProcess | null = null;
    let bind = '';
    for (let attempt = 0; first === null; attempt++) {
      bind = `tcp://127.0.0.1:${20_000 + Math.floor(Math.random() * 10_000)}`;
      first = await start(bind).catch((err: Error) => {
        if (attempt > 5 || !/DIOCP_ERR_REMOTE_BIND/.test(err.message)) throw err;
        return null;
      });
    }
    const ws = ['a', 'b'].map((name) => new WorkerProcess(['--connect', bind, '--config', config, '--name', name], dir));
    procs.push(...ws);
    for (const name of ['a', 'b']) await first.waitForLine((l) => l.msg === 'remote dispatch: worker ready' && l.worker === name);
    await first.kill(); // SIGKILL: no goodbye to the workers

    const second = await start(bind);
    for (const name of ['a', 'b']) await second.waitForLine((l) => l.msg === 'remote dispatch: worker ready' && l.worker === name, 15_000);
    const port = (await second.listening()).port as number;
    const pids = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = await runCli(['call', '--port', String(port), '0x33'], { cwd: dir });
      expect(r.code).toBe(0);
      pids.add(r.stdout.trim());
    }
    for (const pid of pids) expect(ws.map((w) => String(w.pid))).toContain(pid);
    expect(ws.every((w) => w.running)).toBe(true);
  }, 40_000);
});
