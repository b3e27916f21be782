// Remote dispatch lifecycle: gateway restart, graceful worker stop, no workers, retry: false.
import { describe, expect, it } from 'vitest';
import { connect, RemoteError, Status, type Client, type DiocpServer } from '../../src/index.js';
import { startServer } from '../fixtures/server.js';
import type { Logger } from '../../src/logger.js';
import { capturingLogger, dispatchStats, failureSuite, spawnWorkers, until, workersReady, type WorkerProcess } from './helpers.js';

async function outcome(p: Promise<Buffer>): Promise<{ status: number; message: string; body?: string }> {
  return p.then(
    (b) => ({ status: 0, message: '', body: b.toString() }),
    (e: unknown) => {
      if (!(e instanceof RemoteError)) throw e;
      return { status: e.status!, message: e.remoteMessage };
    },
  );
}

describe('remote dispatch: failover and lifecycle', () => {
  const suite = failureSuite();
  const { servers, clients, procs } = suite;

  async function gateway(remote: Record<string, unknown> = {}, logger?: Logger): Promise<DiocpServer> {
    const s = await startServer({ handlers: suite.classes, ...(logger ? { logger } : {}), dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', heartbeatMs: 100, liveness: 3, ...remote } });
    servers.push(s);
    return s;
  }
  async function client(server: DiocpServer): Promise<Client> {
    const c = await connect({ port: server.port });
    clients.push(c);
    return c;
  }
  function workers(n: number, endpoint: string): WorkerProcess[] {
    const w = spawnWorkers(n, endpoint, suite.config, suite.dir);
    procs.push(...w);
    return w;
  }

  it('workers come back by themselves to a restarted gateway on the same address', async () => {
    // A port below the ephemeral range: workers reconnecting to an ephemeral port while no
    // one listens can connect to themselves (TCP self-connect) and hold it.
    let first: DiocpServer | null = null;
    for (let attempt = 0; first === null; attempt++) {
      const bind = `tcp://127.0.0.1:${20_000 + Math.floor(Math.random() * 10_000)}`;
      first = await gateway({ bind }).catch((err: { code?: string }) => {
        if (err.code !== 'DIOCP_ERR_REMOTE_BIND' || attempt > 5) throw err;
        return null;
      });
    }
    const endpoint = dispatchStats(first).endpoint;
    const ws = workers(2, endpoint);
    await workersReady(first, 2);
    const c1 = await client(first);
    expect((await c1.request(0x01, 'before')).toString()).toBe('before');
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await gateway({ bind: endpoint });
    await workersReady(second, 2);
    const c2 = await client(second);
    const pids = new Set((await Promise.all(Array.from({ length: 20 }, () => c2.request(0x33)))).map((b) => Number(b.toString())));
    for (const pid of pids) expect(ws.map((w) => w.pid)).toContain(pid);
    expect(ws.every((w) => w.running)).toBe(true);
    await until(() => ws.every((w) => w.lines.some((l) => l.msg === 'worker: connected to the gateway' && l.reconnected === true)), 'both workers to log their reconnection');
  }, 30_000);

  it('SIGTERM of a worker under load: it finishes what it holds, exits 0, and nothing is retried', async () => {
    const server = await gateway();
    const [leaving] = workers(2, dispatchStats(server).endpoint);
    await workersReady(server, 2);
    const cs = [await client(server), await client(server)];
    let running = true;
    let sent = 0;
    const bad: unknown[] = [];
    const loops = cs.flatMap((c, k) =>
      Array.from({ length: 8 }, async (_, slot) => {
        for (let i = 0; running && i < 2000; i++) {
          const p = Buffer.from(`20:${k}:${slot}:${i}`);
          sent++;
          const o = await outcome(c.request(0x32, p, { timeoutMs: 10_000 }));
          if (o.status !== 0 || o.body !== p.toString()) bad.push(o);
        }
      }),
    );
    await until(() => dispatchStats(server).workers.every((w) => w.done > 20), 'both workers to serve');
    const exit = await leaving!.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const before = sent;
    await until(() => sent > before + 100, 'more load on the remaining worker');
    running = false;
    await Promise.all(loops);
    expect(bad).toEqual([]);
    const d = dispatchStats(server);
    expect(d.retried).toBe(0);
    expect(d.workersLost).toBe(0);
    expect(d.workersLeft).toBe(1);
    expect(d.lateResults).toBe(0);
    const stopped = leaving!.lines.find((l) => l.msg === 'worker: stopped');
    expect(stopped?.answered).toBeGreaterThan(20);
  }, 30_000);

  it('no workers: a request waits noWorkerWaitMs, then UNAVAILABLE; past maxQueued at once', async () => {
    const server = await gateway({ noWorkerWaitMs: 300, maxQueued: 3 });
    const c = await client(server);
    const started = Date.now();
    const all = await Promise.all(Array.from({ length: 5 }, (_, i) => outcome(c.request(0x01, `q${i}`)).then((o) => ({ ...o, ms: Date.now() - started }))));
    expect(all.every((o) => o.status === Status.UNAVAILABLE)).toBe(true);
    const full = all.filter((o) => /maxQueued/.test(o.message));
    const waited = all.filter((o) => /noWorkerWaitMs/.test(o.message));
    expect(full).toHaveLength(2);
    expect(waited).toHaveLength(3);
    // The waiting ones really waited (bounded: the sweep runs every few tens of ms).
    for (const o of waited) expect(o.ms).toBeGreaterThanOrEqual(250);
    for (const o of waited) expect(o.ms).toBeLessThan(5_000);
    expect(server.stats().inFlight).toBe(0);
    expect(dispatchStats(server).unavailable).toBe(5);
  });

  it('pushes and broadcasts from a worker reach other connections; a push to a closed one is dropped and counted', async () => {
    const server = await gateway();
    workers(1, dispatchStats(server).endpoint);
    await workersReady(server, 1);
    const [a, b, gone] = [await client(server), await client(server), await client(server)];
    const heard: string[] = [];
    a.on('push', (cmd, p) => heard.push(`a:${cmd}:${p.toString()}`));
    b.on('push', (cmd, p) => heard.push(`b:${cmd}:${p.toString()}`));
    const bId = (await b.request(0x34)).toString();
    const goneId = (await gone.request(0x34)).toString();
    await gone.close();
    clients.splice(clients.indexOf(gone), 1);
    await until(() => server.stats().connections.now === 2, 'the closed connection to be gone');
    // The worker cannot know whether a connection is open: it says true, the gateway decides.
    expect((await a.request(0x35, bId)).toString()).toBe('true');
    expect((await a.request(0x35, goneId)).toString()).toBe('true');
    expect((await b.request(0x36, 'hello all')).toString()).toBe('-1');
    await until(() => heard.length === 2, 'two pushes');
    expect(heard.sort()).toEqual(['a:54:hello all', 'b:53:to you']);
    expect(dispatchStats(server).droppedPushes).toBe(1);
  });

  it('a slow request does not hold back the answers batched with it (a worker answers as handlers finish)', async () => {
    const server = await gateway();
    workers(1, dispatchStats(server).endpoint);
    await workersReady(server, 1);
    const c = await client(server);
    const order: string[] = [];
    const all = ['400:slow', ...Array.from({ length: 5 }, (_, i) => `1:fast${i}`)].map((p) => c.request(0x32, p).then((b) => order.push(b.toString())));
    await Promise.all(all);
    expect(order).toHaveLength(6);
    expect(order.at(-1)).toBe('400:slow');
    // Fewer batches than answer messages: a batch was answered in parts.
    const d = dispatchStats(server);
    expect(d.results).toBeGreaterThan(d.batches);
  });

  it('a request waiting for a worker is served when one arrives in time', async () => {
    const server = await gateway({ noWorkerWaitMs: 10_000 });
    const c = await client(server);
    const reply = c.request(0x01, 'patience', { timeoutMs: 15_000 });
    await until(() => dispatchStats(server).queued === 1, 'the request to queue');
    workers(1, dispatchStats(server).endpoint);
    expect((await reply).toString()).toBe('patience');
  }, 20_000);

  it('kill -9 of a worker holding a retry: false request: UNAVAILABLE, not re-run; its retryable neighbour is re-posted', async () => {
    const { logger, lines } = capturingLogger('warn');
    // Heartbeats too slow to matter: the closed connection is what tells the gateway.
    const server = await gateway({ heartbeatMs: 5_000 }, logger);
    const ws = workers(2, dispatchStats(server).endpoint);
    await workersReady(server, 2);
    const c = await client(server);
    // Same connection, same tick: one batch, one worker.
    const once = outcome(c.request(0x31, '1500:once', { timeoutMs: 10_000 }));
    const again = outcome(c.request(0x32, '300:again', { timeoutMs: 10_000 }));
    await until(() => dispatchStats(server).workers.some((w) => w.inFlight === 2), 'both requests on one worker');
    const holder = dispatchStats(server).workers.find((w) => w.inFlight === 2)!;
    const victim = ws.find((w) => w.pid === holder.pid)!;
    await victim.kill('SIGKILL');
    const o1 = await once;
    expect(o1.status).toBe(Status.UNAVAILABLE);
    expect(o1.message).toMatch(/retry: false/);
    expect(await again).toEqual({ status: 0, message: '', body: '300:again' });
    const d = dispatchStats(server);
    expect(d.workersLost).toBe(1);
    expect(d.retried).toBe(1);
    // The survivor never saw the retry: false request.
    expect(d.workers).toHaveLength(1);
    expect(d.workers[0]!.retries).toBe(1);
    expect(d.workers[0]!.done).toBe(1);
    expect(lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('remote dispatch: worker lost'))?.why).toBe('its connection closed');
  }, 20_000);

  it('a frozen worker (SIGSTOP, connection still open) is found by missed heartbeats, and rejoins after SIGCONT', async () => {
    const { logger, lines } = capturingLogger('warn');
    const server = await gateway({ heartbeatMs: 100, liveness: 3 }, logger);
    const ws = workers(2, dispatchStats(server).endpoint);
    await workersReady(server, 2);
    const c = await client(server);
    const reply = outcome(c.request(0x32, '300:frozen', { timeoutMs: 10_000 }));
    await until(() => dispatchStats(server).workers.some((w) => w.inFlight === 1), 'the request on a worker');
    const frozen = ws.find((w) => w.pid === dispatchStats(server).workers.find((s) => s.inFlight === 1)!.pid)!;
    frozen.child.kill('SIGSTOP');
    try {
      expect(await reply).toEqual({ status: 0, message: '', body: '300:frozen' });
      // Found by the heartbeat rule (its TCP connection stayed open), not by a disconnect.
      const lost = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('remote dispatch: worker lost'));
      expect(lost).toHaveLength(1);
      expect(lost[0]!.why).toMatch(/no message for \d+ ms \(liveness 3 × heartbeatMs 100\)/);
      const d = dispatchStats(server);
      expect(d.workersLost).toBe(1);
      expect(d.retried).toBe(1);
      expect(d.workers.map((w) => w.pid)).not.toContain(frozen.pid);
    } finally {
      frozen.child.kill('SIGCONT');
    }
    // Thawed, it finds itself unknown (RESET, or its own liveness check) and announces itself again.
    await until(() => dispatchStats(server).workers.some((w) => w.pid === frozen.pid), 'the thawed worker to rejoin');
    expect(frozen.running).toBe(true);
    const pids = new Set((await Promise.all(Array.from({ length: 40 }, () => c.request(0x33)))).map((b) => Number(b.toString())));
    expect(pids.size).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('a request whose workers keep dying gets UNAVAILABLE after maxRetries re-posts', async () => {
    const server = await gateway({ maxRetries: 1 });
    const ws = workers(2, dispatchStats(server).endpoint);
    await workersReady(server, 2);
    const c = await client(server);
    const slow = outcome(c.request(0x32, '5000:doomed', { timeoutMs: 15_000 }));
    for (let k = 0; k < 2; k++) {
      await until(() => dispatchStats(server).workersLost === k && dispatchStats(server).workers.some((w) => w.inFlight === 1), `the request to reach worker ${k + 1}`);
      const pid = dispatchStats(server).workers.find((w) => w.inFlight === 1)!.pid;
      await ws.find((w) => w.pid === pid)!.kill('SIGKILL');
    }
    const o = await slow;
    expect(o.status).toBe(Status.UNAVAILABLE);
    expect(o.message).toMatch(/lost 2 times.*maxRetries 1/);
  }, 20_000);
});
