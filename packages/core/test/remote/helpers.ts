// Remote-dispatch test helpers: real `diocp worker` processes (the compiled CLI) against a
// gateway running in the test process.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RemoteDispatcher, type RemoteDispatchStats } from '../../src/dispatch/remote/dispatcher-remote.js';
import { remoteDefaults, type RemoteDispatchConfig } from '../../src/config/options.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { loadHandlers, type Client, type DiocpServer, type HandlerClass } from '../../src/index.js';
import { assertBuilt, distEntry, WorkerProcess, type LogLine } from '../cli/helpers.js';

export { WorkerProcess };
import { fixtureModules } from '../fixtures/server.js';

export type { LogLine };

/** A temp folder holding worker configs; removed by `cleanup()`. */
export async function tempDir(prefix = 'diocp-remote-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  assertBuilt();
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A worker config serving the compiled fixture handlers (the conformance suite's). */
export async function fixtureWorkerConfig(dir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = path.join(dir, `fixture-worker-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ handlers: [fixtureModules.handlers], setup: fixtureModules.setup, logLevel: 'info', ...extra }));
  return file;
}

/**
 * Handlers for the failure tests, as a plain module over the compiled package: the gateway
 * (in this process) and the workers load the same file.
 *  0x01 echo · 0x31 sleep {ms} then echo, retry: false · 0x32 sleep {ms} then echo · 0x33 the worker's pid
 *  0x34 the caller's connection id · 0x35 push to the connection id given · 0x36 broadcast to all but the caller
 */
export const failureHandlers = (): string =>
  [
    `import { Command } from ${JSON.stringify(distEntry)};`,
    'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
    'export class Echo { handle(p) { return p; } }',
    'Command(0x01)(Echo);',
    'export class SlowOnce { async handle(p) { await sleep(Number(p.toString().split(":")[0])); return p; } }',
    'Command(0x31, { retry: false })(SlowOnce);',
    'export class Slow { async handle(p) { await sleep(Number(p.toString().split(":")[0])); return p; } }',
    'Command(0x32)(Slow);',
    'export class Pid { handle() { return String(process.pid); } }',
    'Command(0x33)(Pid);',
    'export class WhoAmI { handle(_p, ctx) { return String(ctx.connectionId); } }',
    'Command(0x34)(WhoAmI);',
    'export class PushTo { handle(p, ctx) { return String(ctx.gateway.push(Number(p.toString()), 0x35, "to you")); } }',
    'Command(0x35)(PushTo);',
    'export class Shout { handle(p, ctx) { return String(ctx.gateway.broadcast(0x36, p, { except: ctx.connectionId })); } }',
    'Command(0x36)(Shout);',
    '',
  ].join('\n');

export async function failureWorkerConfig(dir: string, extra: Record<string, unknown> = {}): Promise<{ config: string; handlers: string }> {
  const handlers = path.join(dir, 'failure-handlers.mjs');
  await writeFile(handlers, failureHandlers());
  const config = path.join(dir, `failure-worker-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(config, JSON.stringify({ handlers: [handlers], logLevel: 'info', ...extra }));
  return { config, handlers };
}

/**
 * The shared setup of the failure suites (errors, failover), for use inside a describe(): a
 * temp folder with the failure handlers and a worker config serving them, their classes for the
 * gateway, and the servers, clients and worker processes a test started, stopped after it.
 * `dir`, `config` and `classes` are set before the first test.
 */
export function failureSuite(): { dir: string; config: string; classes: HandlerClass[]; servers: DiocpServer[]; clients: Client[]; procs: WorkerProcess[] } {
  const suite = { dir: '', config: '', classes: [] as HandlerClass[], servers: [] as DiocpServer[], clients: [] as Client[], procs: [] as WorkerProcess[] };
  let cleanup = async (): Promise<void> => {};
  beforeAll(async () => {
    ({ dir: suite.dir, cleanup } = await tempDir());
    const f = await failureWorkerConfig(suite.dir, { logLevel: 'info' });
    suite.config = f.config;
    suite.classes = await loadHandlers([f.handlers], suite.dir);
  });
  afterEach(async () => {
    await Promise.all(suite.clients.splice(0).map((c) => c.close()));
    await Promise.all(suite.servers.splice(0).map((s) => s.close()));
    await Promise.all(suite.procs.splice(0).map((p) => p.kill()));
  });
  afterAll(() => cleanup());
  return suite;
}

/** Spawn `n` workers connecting to `endpoint` with `config`. */
export function spawnWorkers(n: number, endpoint: string, config: string, cwd: string, args: string[] = []): WorkerProcess[] {
  return Array.from({ length: n }, (_, i) => new WorkerProcess(['--connect', endpoint, '--config', config, '--name', `w${i}`, ...args], cwd));
}

/** Poll until `pred` holds (every 10 ms); throws with `what` after `timeoutMs`. */
export async function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function dispatchStats(server: DiocpServer): RemoteDispatchStats {
  return server.stats().dispatch!;
}

/** Wait until the gateway counts `n` ready workers. */
export function workersReady(server: DiocpServer, n: number, timeoutMs = 10_000): Promise<void> {
  return until(() => dispatchStats(server).workers.filter((w) => w.state === 'ready').length === n, `${n} workers`, timeoutMs);
}

/**
 * A RemoteDispatcher that brings its own worker processes: they start after the ROUTER is
 * bound (they need its port) and the start resolves once all are ready; stop() ends them.
 * Lets the shared conformance suite run remote mode unchanged.
 */
export class RemoteWithWorkers extends RemoteDispatcher {
  procs: WorkerProcess[] = [];
  constructor(
    private readonly count: number,
    private readonly config: string,
    private readonly cwd: string,
    options: RemoteDispatchConfig = {},
    private readonly args: string[] = [],
  ) {
    super({ ...remoteDefaults, bind: 'tcp://127.0.0.1:*', ...options });
  }

  override async start(host: Parameters<RemoteDispatcher['start']>[0]): Promise<void> {
    await super.start(host);
    this.procs = spawnWorkers(this.count, this.boundEndpoint, this.config, this.cwd, this.args);
    try {
      await until(() => this.stats().workers.length === this.count || this.procs.some((w) => !w.running), 'the workers');
      const dead = this.procs.find((w) => !w.running);
      if (dead) throw new Error(`a worker exited at start\n${dead.describe()}`);
    } catch (err) {
      // The server never starts, so nobody calls stop(): leave no worker behind.
      await this.stop();
      throw err;
    }
  }

  override async stop(): Promise<void> {
    await super.stop();
    await Promise.all(this.procs.map((w) => w.kill('SIGTERM')));
  }
}

/** A pino logger whose lines are kept in `lines` (to check what the gateway logged). */
export function capturingLogger(level = 'info') {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}
