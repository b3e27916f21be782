// CURVE end to end, with the CLI: a gateway (`diocp start`, dispatch.curve in its config) serves
// through an allowed `diocp worker` process; a worker process with a key not on the allow list
// is refused and logged by the gateway, which keeps serving. Plus the exposed-bind warning and
// a bad key in the config, as a user meets them.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { dealerCurveOptions, generateKeyPair } from '../../src/dispatch/remote/curve.js';
import { Command, connect, createServer } from '../../src/index.js';
import { ServerProcess, WorkerProcess, handlersModule, runCli, useTempDirs, type LogLine } from '../cli/helpers.js';

const tempDir = useTempDirs('diocp-curve-e2e-');

const processes: { kill(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) await p.kill();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Worker processes start slowly when the whole suite loads both cores: generous waits, and
// the worker's own output in the failure message.
const WAIT_MS = 25_000;

async function waitForGatewayLine(server: ServerProcess, worker: WorkerProcess, pred: (l: LogLine) => boolean): Promise<LogLine> {
  try {
    return await server.waitForLine(pred, WAIT_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nworker running: ${worker.running}\nworker stdout:\n${worker.stdout}\nworker stderr:\n${worker.stderr}`);
  }
}

async function echoOk(port: number, n: number): Promise<void> {
  const client = await connect({ host: '127.0.0.1', port, timeoutMs: 10_000 });
  try {
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => client.request(0x01, Buffer.from(`msg ${i}`))));
    expect(replies.map((r) => (r as Buffer).toString())).toEqual(Array.from({ length: n }, (_, i) => `msg ${i}`));
  } finally {
    await client.close();
  }
}

describe('CURVE end to end (diocp start + diocp worker processes)', () => {
  it('an allowed worker serves; a stranger is refused and logged once; the gateway keeps serving', { timeout: 60_000 }, async () => {
    const gw = generateKeyPair();
    const allowed = generateKeyPair();
    const stranger = generateKeyPair();
    const dir = await tempDir({
      'handlers.mjs': handlersModule(),
      'gateway.json': JSON.stringify({
        handlers: ['./handlers.mjs'],
        dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', noWorkerWaitMs: 2000, curve: { ...gw, allow: [allowed.publicKey] } },
      }),
      // The allowed worker keeps its secret key out of the file: DIOCP_CURVE_SECRET_KEY.
      'worker.json': JSON.stringify({ handlers: ['./handlers.mjs'], worker: { curve: { serverKey: gw.publicKey, publicKey: allowed.publicKey } } }),
      'stranger.json': JSON.stringify({ handlers: ['./handlers.mjs'] }),
    });
    const server = new ServerProcess(['--port', '0', '--config', 'gateway.json'], dir);
    processes.push(server);
    const listening = await server.listening();
    const port = listening.port as number;
    const endpoint = listening.remote as string;
    expect(endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    // Loopback with CURVE: no exposure warning.
    expect(server.lines.some((l) => String(l.msg).includes('WITHOUT CURVE'))).toBe(false);

    const good = new WorkerProcess(['--connect', endpoint, '--config', 'worker.json', '--name', 'allowed'], dir, {
      DIOCP_CURVE_SECRET_KEY: allowed.secretKey,
    });
    processes.push(good);
    await waitForGatewayLine(server, good, (l) => l.worker === 'allowed' && String(l.msg).includes('worker ready'));
    await echoOk(port, 20);

    // The stranger knows the gateway's public key, but its own key is not on the allow list.
    const bad = new WorkerProcess(
      ['--connect', endpoint, '--config', 'stranger.json', '--name', 'stranger',
        '--server-key', gw.publicKey, '--public-key', stranger.publicKey, '--secret-key', stranger.secretKey],
      dir,
    );
    processes.push(bad);
    const refusal = await waitForGatewayLine(server, bad, (l) => l.publicKey === stranger.publicKey);
    expect(refusal.level).toBe(40);
    expect(refusal.msg).toContain('not on the allow list');
    expect(refusal.address).toBe('127.0.0.1');

    // The gateway keeps serving through the allowed worker while the stranger keeps trying.
    await echoOk(port, 50);
    await sleep(300);
    await echoOk(port, 20);
    expect(server.lines.some((l) => l.worker === 'stranger')).toBe(false); // never became a worker
    expect(server.lines.filter((l) => l.publicKey === stranger.publicKey)).toHaveLength(1); // logged once
    // The secret keys never reach the gateway's log.
    for (const k of [gw.secretKey, allowed.secretKey, stranger.secretKey]) expect(server.stdout).not.toContain(k);
    expect(bad.running).toBe(true); // refused, not crashed: it retries with backoff
    expect(server.running).toBe(true);
  });

  it('without the allowed worker nothing is served: a stranger alone gets no request (UNAVAILABLE)', { timeout: 60_000 }, async () => {
    const gw = generateKeyPair();
    const stranger = generateKeyPair();
    const dir = await tempDir({
      'handlers.mjs': handlersModule(),
      'gateway.json': JSON.stringify({
        handlers: ['./handlers.mjs'],
        dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', noWorkerWaitMs: 1500, curve: { ...gw, allow: [generateKeyPair().publicKey] } },
      }),
      'stranger.json': JSON.stringify({ handlers: ['./handlers.mjs'] }),
    });
    const server = new ServerProcess(['--port', '0', '--config', 'gateway.json'], dir);
    processes.push(server);
    const listening = await server.listening();
    const bad = new WorkerProcess(
      ['--connect', listening.remote as string, '--config', 'stranger.json', '--name', 'stranger',
        '--server-key', gw.publicKey, '--public-key', stranger.publicKey, '--secret-key', stranger.secretKey],
      dir,
    );
    processes.push(bad);
    await waitForGatewayLine(server, bad, (l) => l.publicKey === stranger.publicKey);
    const client = await connect({ host: '127.0.0.1', port: listening.port as number, timeoutMs: 10_000 });
    try {
      await expect(client.request(0x01, Buffer.from('anyone?'))).rejects.toMatchObject({ status: 5, statusName: 'UNAVAILABLE' });
    } finally {
      await client.close();
    }
  });

  it('a gateway bound to 0.0.0.0 without CURVE warns loudly at start', async () => {
    const dir = await tempDir({ 'handlers.mjs': handlersModule(), 'gateway.json': JSON.stringify({ handlers: ['./handlers.mjs'] }) });
    const server = new ServerProcess(['--port', '0', '--config', 'gateway.json', '--dispatch', 'remote', '--bind', 'tcp://0.0.0.0:*'], dir);
    processes.push(server);
    await server.listening();
    const warn = server.lines.find((l) => String(l.msg).includes('WITHOUT CURVE'));
    expect(warn?.level).toBe(40);
    expect(warn?.bind).toBe('tcp://0.0.0.0:*');
  });

  it('a gateway config with a mismatched CURVE key pair does not start; the error names dispatch.curve', async () => {
    const gw = generateKeyPair();
    const dir = await tempDir({
      'handlers.mjs': handlersModule(),
      'gateway.json': JSON.stringify({
        handlers: ['./handlers.mjs'],
        dispatch: { mode: 'remote', curve: { publicKey: generateKeyPair().publicKey, secretKey: gw.secretKey, allow: [gw.publicKey] } },
      }),
    });
    const r = await runCli(['start', '--port', '0', '--config', 'gateway.json'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('dispatch.curve');
    expect(r.stderr).toContain('does not belong');
    expect(r.stderr).not.toContain(gw.secretKey);
  });

  it('a worker with half its CURVE flags or a malformed key exits 2/1 naming the problem, before connecting', async () => {
    const dir = await tempDir({ 'handlers.mjs': handlersModule(), 'diocp.config.json': JSON.stringify({ handlers: ['./handlers.mjs'] }) });
    const k = generateKeyPair();
    let r = await runCli(['worker', '--connect', 'tcp://127.0.0.1:1', '--server-key', k.publicKey], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--public-key');
    r = await runCli(['worker', '--connect', 'tcp://127.0.0.1:1', '--server-key', 'not-a-key', '--public-key', k.publicKey, '--secret-key', k.secretKey], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('serverKey');
    expect(r.stderr).not.toContain(k.secretKey);
  });
});

describe('CURVE in the gateway process: what reaches the dispatcher', () => {
  it('a stranger\'s messages never reach it (refusedCurve counts, badMessages stays 0); an allowed peer\'s do', async () => {
    class Echo {
      handle(p: Buffer): Buffer {
        return p;
      }
    }
    Command(0x01)(Echo);
    const gw = generateKeyPair();
    const allowed = generateKeyPair();
    const stranger = generateKeyPair();
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(...String(c).trim().split('\n').map((l) => JSON.parse(l) as LogLine)), cb()) }));
    const server = createServer({
      host: '127.0.0.1',
      port: 0,
      handlers: [Echo],
      dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', curve: { ...gw, allow: [allowed.publicKey] } },
      logger,
    });
    const addr = await server.listen();
    const dealers: Dealer[] = [];
    try {
      const dealer = (own: typeof gw) => {
        const d = new Dealer({ linger: 0, ...dealerCurveOptions({ serverKey: gw.publicKey, ...own }) });
        dealers.push(d);
        d.connect(addr.remote!);
        return d;
      };
      // Not the worker protocol: garbage, so that reaching the dispatcher shows as badMessages.
      await dealer(stranger).send(['not', 'a worker message']);
      const deadline = Date.now() + 5000;
      while ((server.stats().dispatch?.refusedCurve ?? 0) < 1 && Date.now() < deadline) await sleep(10);
      expect(server.stats().dispatch?.refusedCurve).toBe(1);
      await sleep(200);
      expect(server.stats().dispatch?.badMessages).toBe(0);
      expect(lines.some((l) => l.publicKey === stranger.publicKey)).toBe(true);

      await dealer(allowed).send(['not', 'a worker message']);
      while ((server.stats().dispatch?.badMessages ?? 0) < 1 && Date.now() < deadline + 5000) await sleep(10);
      expect(server.stats().dispatch?.badMessages).toBe(1);
      expect(server.stats().dispatch?.refusedCurve).toBe(1);
    } finally {
      for (const d of dealers) d.close();
      await server.close();
    }
  });
});
