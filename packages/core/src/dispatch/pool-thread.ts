// The handler-thread side of local-pool dispatch: loaded by @diocp/jobs worker threads.
// Each thread builds its own DI container and handler table from the compiled handler
// modules, then runs batches of requests through the handler-calling code the inline mode uses
// (runHandlerFast).
import { Buffer } from 'node:buffer';
import 'reflect-metadata';
import { container as rootContainer } from 'tsyringe';
import { defineJob } from '@diocp/jobs';
import { pino, type Logger } from 'pino';
import { pathToFileURL } from 'node:url';
import { runSetup } from '../config/load.js';
import { diocpError } from '../errors.js';
import type { Context, GatewayApi } from '../gateway/context.js';
import { Router } from '../router/router.js';
import { collectCommandClasses, scanCommands } from '../router/scanner.js';
import { compiledUrl } from '../util/compiled-url.js';
import { frameworkError, ok, type Outcome } from './outcome.js';
import { encodePushPayload, exceptIds, type BroadcastFilter } from './push-payload.js';
import { peerLookup, ReqState, type Effect, type PoolBatch, type PoolInit, type PoolResult } from './pool-protocol.js';
import { runHandlerFast } from './run-handler.js';
import { bufferView } from '../util/buffer-view.js';

/** How often a thread with async handlers in flight shows it is alive. */
export const HEARTBEAT_MS = 10;

interface Runtime {
  key: string;
  router: Router | null;
  ready: Promise<Router>;
  logger: Logger;
}
let runtime: Runtime | null = null;

/** Build a handler table from compiled modules and a setup module (a thread's, or a remote worker's). */
export async function buildRouter(init: Pick<PoolInit, 'handlerModules' | 'setup' | 'defaultTimeoutMs'>): Promise<Router> {
  const container = rootContainer.createChildContainer();
  if (init.setup) await runSetup(init.setup, container);
  const modules = await Promise.all(init.handlerModules.map((m) => import(pathToFileURL(m).href) as Promise<Record<string, unknown>>));
  return new Router(scanCommands(collectCommandClasses(modules), { container, defaultTimeoutMs: init.defaultTimeoutMs }));
}

function runtimeFor(batch: PoolBatch): Runtime {
  if (runtime === null || runtime.key !== batch.initKey) {
    const r: Runtime = { key: batch.initKey, router: null, ready: buildRouter(batch.init), logger: pino({ name: 'diocp-thread', level: batch.init.logLevel }) };
    r.ready.then((router) => (r.router = router), () => {});
    runtime = r;
  }
  return runtime;
}

/** The session a handler sees in a thread: the gateway's entries, with every change recorded. */
class RecordingSession extends Map<string, unknown> {
  private recording = false;
  constructor(
    entries: [string, unknown][],
    private readonly to: number,
    private readonly effects: Effect[],
  ) {
    super(entries);
    this.recording = true;
  }
  override set(key: string, value: unknown): this {
    super.set(key, value);
    if (this.recording) this.effects.push({ k: 'set', to: this.to, key, v: value });
    return this;
  }
  override delete(key: string): boolean {
    const had = super.delete(key);
    if (had) this.effects.push({ k: 'del', to: this.to, key });
    return had;
  }
  override clear(): void {
    super.clear();
    this.effects.push({ k: 'clear', to: this.to });
  }
}

/**
 * A handler's context in a thread, made per connection per batch (a batch holds ~100
 * connections): what costs something — the recording session, the child logger — is made on
 * first use, since most handlers touch neither.
 */
class ThreadContext implements Context {
  private sessionMap: RecordingSession | null = null;
  private log: Logger | null = null;
  constructor(
    readonly connectionId: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    private readonly entries: [string, unknown][],
    private readonly effects: Effect[],
    readonly gateway: GatewayApi,
    private readonly threadLogger: Logger,
  ) {}

  get session(): Map<string, unknown> {
    return (this.sessionMap ??= new RecordingSession(this.entries, this.connectionId, this.effects));
  }

  push(command: number, payload?: unknown): boolean {
    return this.gateway.push(this.connectionId, command, payload);
  }

  get logger(): Logger {
    return (this.log ??= this.threadLogger.child({ conn: this.connectionId, remote: `${this.remoteAddress}:${this.remotePort}` }));
  }
}

function contexts(batch: Omit<RunnableBatch, 'status'>, logger: Logger, router: Router, effects: Effect[]) {
  const byConn = new Map<number, Context>();
  const max = batch.init.maxFrameSize;
  const gateway: GatewayApi = {
    push(to, command, payload) {
      effects.push({ k: 'push', to, c: command, b: encodePushPayload(router, command, payload, max) });
      return true;
    },
    broadcast(command, payload, filter?: BroadcastFilter<Context>) {
      if (typeof filter === 'function') {
        throw diocpError('DIOCP_ERR_GATEWAY_BAD_PUSH', 'a broadcast filter function only works with inline dispatch; pass { except: connectionId } instead');
      }
      effects.push({ k: 'bcast', c: command, b: encodePushPayload(router, command, payload, max), except: [...exceptIds(filter)] });
      // The gateway knows how many it reached; a thread can only say it was queued.
      return -1;
    },
    get connectionCount() {
      return -1;
    },
  };
  const peer = peerLookup(batch.peers);
  const get = (id: number): Context => {
    let ctx = byConn.get(id);
    if (ctx === undefined) {
      const [address, port, entries] = peer(id) ?? ['', 0, []];
      ctx = new ThreadContext(id, address, port, entries, effects, gateway, logger);
      byConn.set(id, ctx);
    }
    return ctx;
  };
  return get;
}

/**
 * Build this thread's handler table now (at start, so that a DI or import error stops the
 * server instead of failing every request later); answers the command ids it serves.
 */
export const warmThread = defineJob(compiledUrl(import.meta.url), 'diocp.dispatch-warm', async (batch: Pick<PoolBatch, 'init' | 'initKey'>): Promise<number[]> => {
  const router = await runtimeFor(batch as PoolBatch).ready;
  return router.routes.map((r) => r.command);
});

/** One batch of requests, run the way the inline dispatcher runs them. */
export const dispatchBatch = defineJob(compiledUrl(import.meta.url), 'diocp.dispatch', (batch: PoolBatch): PoolResult | Promise<PoolResult> => {
  const rt = runtimeFor(batch);
  // The first batch of a thread waits for its table; later ones run handlers synchronously
  // inside the job, where @diocp/jobs turns a handler's process.exit into an error.
  if (rt.router === null) return rt.ready.then((router) => runBatch(batch, router, rt.logger));
  return runBatch(batch, rt.router, rt.logger);
});

/** What runBatch needs of a batch: a PoolBatch without the thread set-up (remote workers build their own). */
export type RunnableBatch = Pick<PoolBatch, 'status' | 'conn' | 'cmd' | 'payload' | 'offsets' | 'peers'> & { init: Pick<PoolInit, 'maxFrameSize' | 'debug'> };

/**
 * Run one batch of requests the way the inline dispatcher runs them, recording effects (push,
 * broadcast, session changes) for the gateway to apply. Used by handler threads (local-pool)
 * and by remote workers that run handlers on their main thread.
 */
export function runBatch(batch: RunnableBatch, router: Router, logger: Logger): PoolResult | Promise<PoolResult> {
  const n = batch.conn.length;
  const status = new Int32Array(batch.status);
  const effects: Effect[] = [];
  const get = contexts(batch, logger, router, effects);
  // A synchronous success is its response Buffer itself (runHandlerFast): no outcome object.
  const outcomes: (Buffer | Outcome)[] = new Array(n);
  let pending: Promise<void>[] | null = null;
  for (let i = 0; i < n; i++) {
    Atomics.store(status, i, ReqState.Started);
    Atomics.add(status, n, 1);
    const o = runAt(batch, i, router, get);
    if (o instanceof Promise) {
      const idx = i;
      (pending ??= []).push(
        o.then((res) => {
          outcomes[idx] = res;
          Atomics.store(status, idx, ReqState.Finished);
        }),
      );
    } else {
      outcomes[i] = o;
      Atomics.store(status, i, ReqState.Finished);
    }
  }
  if (pending === null) return pack(outcomes, effects);
  // While handlers wait on I/O the event loop is alive: say so, so that a slow async handler
  // is not taken for a stuck thread (one in an endless loop stops this heartbeat).
  const heartbeat = setInterval(() => Atomics.add(status, n, 1), HEARTBEAT_MS);
  return Promise.all(pending).then(() => {
    clearInterval(heartbeat);
    return pack(outcomes, effects);
  });
}

/**
 * Like runBatch, but hands the answers over as they are ready instead of all at the end: once
 * for the handlers that finished synchronously, then once per turn of the event loop for the
 * async ones that finished in it. The effects recorded so far travel with each call, so a
 * request's effects always come with or before its answer. Remote workers use it, so that one
 * slow request does not hold back the answers of the requests batched with it.
 */
export function runBatchStreaming(
  batch: Omit<RunnableBatch, 'status'>,
  router: Router,
  logger: Logger,
  emit: (indexes: number[], outcomes: Outcome[], effects: Effect[] | null) => void,
): void {
  const n = batch.conn.length;
  const effects: Effect[] = [];
  const get = contexts(batch, logger, router, effects);
  let indexes: number[] = [];
  let outcomes: Outcome[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (indexes.length === 0) return;
    const i = indexes;
    const o = outcomes;
    indexes = [];
    outcomes = [];
    emit(i, o, effects.length ? effects.splice(0) : null);
  };
  for (let i = 0; i < n; i++) {
    const o = runAt(batch, i, router, get);
    if (o instanceof Promise) {
      const idx = i;
      o.then((res) => {
        indexes.push(idx);
        outcomes.push(res);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    } else {
      indexes.push(i);
      outcomes.push(o instanceof Uint8Array ? ok(o) : o);
    }
  }
  flush();
}

/** Run request `i` of a batch: its handler, or UNKNOWN_COMMAND when no route has its command. */
function runAt(batch: Omit<RunnableBatch, 'status'>, i: number, router: Router, get: (conn: number) => Context): Buffer | Outcome | Promise<Outcome> {
  const route = router.get(batch.cmd[i]!);
  if (route === undefined) return frameworkError(diocpError('DIOCP_ERR_ROUTER_UNKNOWN_COMMAND', batch.cmd[i]!));
  const payload = bufferView(batch.payload.buffer, batch.payload.byteOffset + batch.offsets[i]!, batch.offsets[i + 1]! - batch.offsets[i]!);
  return runHandlerFast(route, payload, get(batch.conn[i]!), batch.init.debug);
}

/** The response bytes of a settled request: the Buffer itself, or an OK outcome's payload; null for an error. */
function answerOf(o: Buffer | Outcome): Buffer | null {
  if (o instanceof Uint8Array) return o;
  return o.status === 0 ? (o as { payload: Buffer }).payload : null;
}

function pack(outcomes: (Buffer | Outcome)[], effects: Effect[]): PoolResult {
  const n = outcomes.length;
  const st = new Uint16Array(n);
  const offsets = new Uint32Array(n + 1);
  let errors: Record<number, NonNullable<PoolResult['errors']>[number]> | null = null;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const o = outcomes[i]!;
    const bytes = answerOf(o);
    if (bytes !== null) size += bytes.length;
    else {
      st[i] = (o as Outcome).status;
      (errors ??= {})[i] = (o as { error: NonNullable<PoolResult['errors']>[number] }).error;
    }
  }
  // Shared memory: the answers reach the gateway thread without another copy.
  const payload = new Uint8Array(new SharedArrayBuffer(size));
  let at = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = at;
    const bytes = answerOf(outcomes[i]!);
    if (bytes !== null) {
      payload.set(bytes, at);
      at += bytes.length;
    }
  }
  offsets[n] = at;
  return { st, payload, offsets, errors, effects: effects.length ? effects : null };
}
