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
});
