// Chaos: load from several clients with many requests in flight while workers are killed -9
// and new ones start. Every request must get exactly one OK answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, loadHandlers, type Client, type DiocpServer } from '../../src/index.js';
import { startServer } from '../fixtures/server.js';
import { dispatchStats, failureWorkerConfig, spawnWorkers, tempDir, until, workersReady, type WorkerProcess } from './helpers.js';

/**
 * `inFlight` request loops per client until stop() (or `maxPerClient` requests each). Each
 * request carries a unique payload (a 0–2 ms sleep, then the echo), so that workers hold
 * requests when they are killed. Resolves with [sent, matching OK answers, errors].
 */
function load(clients: Client[], inFlight: number, maxPerClient = 20_000) {
  let running = true;
  let sent = 0;
  let ok = 0;
  const errors: unknown[] = [];
  const loops = clients.flatMap((c, k) =>
    Array.from({ length: inFlight }, async (_, slot) => {
      for (let i = 0; running && i < maxPerClient / inFlight; i++) {
        const payload = Buffer.from(`${i % 3}:${k}:${slot}:${i}`);
        sent++;
        try {
          const reply = await c.request(0x32, payload, { timeoutMs: 15_000 });
          if (reply.equals(payload)) ok++;
          else errors.push(new Error(`wrong answer ${reply.toString()} for ${payload.toString()}`));
        } catch (err) {
          errors.push(err);
        }
      }
    }),
  );
  return {
    get ok() {
      return ok;
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { sent, ok, errors };
    },
  };
}

describe('remote dispatch chaos', () => {
  let dir = '';
  let cleanup = async () => {};
  let server: DiocpServer | null = null;
  const clients: Client[] = [];
  const procs: WorkerProcess[] = [];
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await Promise.all(procs.map((p) => p.kill()));
    await cleanup();
  });

  it('kill -9 two of three workers and start two more under load: every request answered OK exactly once', async () => {
    const { config, handlers } = await failureWorkerConfig(dir, { logLevel: 'warn' });
    server = await startServer({
      handlers: await loadHandlers([handlers], dir),
      dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', heartbeatMs: 100, liveness: 3, maxRetries: 5 },
    });
    const endpoint = dispatchStats(server).endpoint;
    procs.push(...spawnWorkers(3, endpoint, config, dir));
    await workersReady(server, 3);
    for (let i = 0; i < 4; i++) clients.push(await connect({ port: server.port }));
    const framesOutBefore = server.stats().framesOut;

    const traffic = load(clients, 24);
    await until(() => traffic.ok > 300, 'the load to get going');
    await procs[0]!.kill('SIGKILL');
    await until(() => traffic.ok > 900, 'more answers after the first kill', 20_000);
    await procs[1]!.kill('SIGKILL');
    procs.push(...spawnWorkers(2, endpoint, config, dir, ['--name', 'late']));
    await until(() => dispatchStats(server!).workersLost >= 2 && dispatchStats(server!).workers.length === 3, 'two workers declared dead and two new ones ready', 20_000);
    const okAtRestock = traffic.ok;
    await until(() => traffic.ok > okAtRestock + 600, 'answers from the new workers', 20_000);
    const { sent, ok, errors } = await traffic.stop();

    expect(errors).toEqual([]);
    expect(ok).toBe(sent);
    expect(sent).toBeGreaterThan(1500);
    const stats = server.stats();
    // Exactly one answer frame per request (no duplicates on the wire), nothing left inside.
    expect(stats.framesOut - framesOutBefore).toBe(BigInt(sent));
    expect(stats.inFlight).toBe(0);
    const d = stats.dispatch!;
    expect(d.workersLost).toBe(2);
    expect(d.retried).toBeGreaterThan(0);
    expect(d.unavailable).toBe(0);
    // Re-posted requests were served by the survivors and the newcomers, and counted there.
    const retriesSeen = d.workers.reduce((n, w) => n + w.retries, 0);
    expect(retriesSeen).toBeGreaterThan(0);
    expect(retriesSeen).toBeLessThanOrEqual(d.retried);
    expect(d.workers.every((w) => w.done > 0)).toBe(true);
  }, 60_000);
});
