// Local-pool dispatch when handler threads die or hang: every request gets exactly one answer.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, RemoteError, Status, type Client, type DiocpServer } from '../../src/index.js';
import { fixtureHandlers } from '../fixtures/handlers.js';
import { fixturePool, startServer } from '../fixtures/server.js';

async function statusOf(p: Promise<unknown>): Promise<number> {
  return p.then(
    () => 0,
    (e: unknown) => {
      if (!(e instanceof RemoteError)) throw e;
      return e.status!;
    },
  );
}

/** Echo traffic from `clients` until `stop()`; resolves with [sent, answered correctly]. */
function load(clients: Client[]) {
  let running = true;
  let sent = 0;
  let ok = 0;
  const loops = clients.map(async (c, k) => {
    while (running) {
      const batch = Array.from({ length: 8 }, (_, i) => Buffer.from(`${k}:${sent + i}`));
      sent += batch.length;
      const replies = await Promise.all(batch.map((b) => c.request(0x01, b, { timeoutMs: 10_000 })));
      replies.forEach((r, i) => r.equals(batch[i]!) && ok++);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return [sent, ok] as const;
    },
  };
}

describe('local-pool dispatch under failure', () => {
  let server: DiocpServer | null = null;
  const clients: Client[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.close();
    server = null;
  });
  async function boot(threads = 2) {
    server = await startServer({ handlers: fixtureHandlers, dispatcherInstance: fixturePool(threads) });
    for (let i = 0; i < 4; i++) clients.push(await connect({ port: server.port }));
    // Warm every thread's handler table.
    await Promise.all(clients.map((c) => c.request(0x01, 'warm')));
    return server;
  }

  it('answers every request when a thread crashes mid-load; a retry: false command gets UNAVAILABLE', async () => {
    await boot();
    const traffic = load(clients);
    await new Promise((r) => setTimeout(r, 100));
    const crash = statusOf(clients[0]!.request(0x20, undefined, { timeoutMs: 10_000 }));
    const crashRetried = statusOf(clients[1]!.request(0x22, undefined, { timeoutMs: 10_000 }));
    expect(await crash).toBe(Status.UNAVAILABLE);
    // Retried once on another thread, which it crashes too: then an error, not a third try.
    expect(await crashRetried).toBe(Status.HANDLER_ERROR);
    await new Promise((r) => setTimeout(r, 100));
    const [sent, ok] = await traffic.stop();
    expect(sent).toBeGreaterThan(100);
    expect(ok).toBe(sent);
    expect(server!.stats().inFlight).toBe(0);
  });

  it('answers TIMEOUT for an endless loop, replaces the stuck thread, and answers everything else', async () => {
    await boot();
    const traffic = load(clients);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const spin = await statusOf(clients[2]!.request(0x21, undefined, { timeoutMs: 10_000 }));
    expect(spin).toBe(Status.TIMEOUT);
    expect(Date.now() - started).toBeLessThan(2_000);
    await new Promise((r) => setTimeout(r, 300)); // the watchdog replaces the thread
    const [sent, ok] = await traffic.stop();
    expect(ok).toBe(sent);
    // Both threads serve again: two slow requests on two connections overlap.
    const t0 = Date.now();
    await Promise.all([clients[0]!.request(0x14, { ms: 80 }, { codec: 'json' }), clients[1]!.request(0x14, { ms: 80 }, { codec: 'json' })]);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('keeps ordered commands in order under load', async () => {
    await boot();
    const traffic = load(clients.slice(1));
    const c = clients[0]!;
    const n = 40;
    const answered: number[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) => c.request<{ i: number }>(0x15, { i, delay: i % 3 }, { codec: 'json' }).then((r) => answered.push(r.i))),
    );
    expect(answered).toEqual(Array.from({ length: n }, (_, i) => i));
    const [sent, ok] = await traffic.stop();
    expect(ok).toBe(sent);
  });
});
