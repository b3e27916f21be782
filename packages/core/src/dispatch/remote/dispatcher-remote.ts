import { Buffer } from 'node:buffer';
import { Router } from 'zeromq';
import { diocpError } from '../../errors.js';
import { Status } from '../../protocol/constants.js';
import type { ResolvedRemoteDispatch } from '../../config/options.js';
import type { Dispatcher, DispatcherHost, DispatchRequest } from '../dispatcher.js';
import { applyEffects } from '../apply-effects.js';
import { frameworkError, type Outcome } from '../outcome.js';
import type { Effect } from '../pool-protocol.js';
import { routerCurveOptions, startAuthenticator, warnIfExposed, type Authenticator } from './curve.js';
import { RidTable } from './rid-table.js';
import { SendQueue } from './send-queue.js';
import {
  decode,
  encodeBatch,
  encodeRefuse,
  encodeSignal,
  encodeWelcome,
  errorBodyAt,
  Msg,
  WIRE_VERSION,
  WireError,
  type DecodedResult,
  type Peer,
  type ReadyBody,
} from './wire.js';

/**
 * ZMQ_ROUTER_NOTIFY (libzmq draft API, built into zeromq.js 6): the ROUTER delivers an empty
 * message from a peer's routing id when its connection opens and when it closes. A worker
 * killed -9 is then known dead as soon as its TCP connection drops, not liveness heartbeats
 * later. Value 3 = ZMQ_NOTIFY_CONNECT | ZMQ_NOTIFY_DISCONNECT.
 */
const ZMQ_ROUTER_NOTIFY = 97;
/** Most requests in one BATCH message. */
const MAX_BATCH = 1024;
/** Distinct misbehaving peers whose first bad message is logged; past it they are counted only. */
const MAX_LOGGED_PEERS = 1024;

/** One worker's counters, as `server.stats().dispatch.workers` shows them. */
export interface RemoteWorkerStats {
  /** Routing id (hex) the gateway knows the worker by. */
  id: string;
  name: string;
  pid: number;
  capacity: number;
  threads: number;
  /** Requests sent to it and not answered yet. */
  inFlight: number;
  /** Requests it answered OK / with an error. */
  done: number;
  failed: number;
  /** Requests it was given that were re-posts (another worker died holding them). */
  retries: number;
  /** Milliseconds since its last message (any message counts as a heartbeat). */
  lastHeartbeatMs: number;
  /** `ready`, or `leaving` after it sent DISCONNECT (it gets no more work). */
  state: 'ready' | 'leaving';
}

export interface RemoteDispatchStats {
  mode: 'remote';
  /** The address the ROUTER is bound to (the real port when `bind` said `*`). */
  endpoint: string;
  workers: RemoteWorkerStats[];
  /** Requests waiting for a worker with credit. */
  queued: number;
  /** Re-posts of requests whose worker died (each time one is re-posted). */
  retried: number;
  /** Requests answered UNAVAILABLE by this dispatcher (no worker in time, queue full, retries spent, retry: false). */
  unavailable: number;
  /** Workers declared dead (missed heartbeats, a malformed message, or a new READY while holding work). */
  workersLost: number;
  /** Workers that left gracefully (DISCONNECT). */
  workersLeft: number;
  /** Answers dropped: for a request already re-posted, answered elsewhere, or unknown. */
  lateResults: number;
  /** Pushes from workers dropped because their connection had closed. */
  droppedPushes: number;
  /** BATCH messages sent and RESULT messages received (requests per message = done / batches). */
  batches: number;
  results: number;
  /** Malformed messages received (logged once per peer, code DIOCP_ERR_REMOTE_BAD_MESSAGE). */
  badMessages: number;
  /** Peers refused for speaking another protocol version. */
  refusedVersion: number;
  /** CURVE handshakes refused (0 without CURVE). */
  refusedCurve: number;
}

/** A request the dispatcher holds: waiting in the queue (worker null) or sent to a worker. */
interface Pending {
  readonly req: DispatchRequest;
  rid: number;
  worker: WorkerState | null;
  reposts: number;
  /** performance.now() after which a queued request is answered UNAVAILABLE. */
  deadline: number;
}

class WorkerState {
  /** Requests sent to it and not answered yet (they are in the dispatcher's `pending`). */
  held = 0;
  done = 0;
  failed = 0;
  retries = 0;
  leaving = false;
  constructor(
    readonly id: Buffer,
    readonly key: string,
    readonly ready: ReadyBody,
    public lastSeen: number,
  ) {}
  get credit(): number {
    return this.leaving ? 0 : this.ready.capacity - this.held;
  }
  get label(): string {
    return this.ready.name || this.id.toString('hex');
  }
}

/**
 * Remote dispatch: the gateway binds a ZeroMQ ROUTER; logic processes (`diocp worker`, or any
 * program that speaks docs/worker-protocol.md) connect with a DEALER, announce their credit
 * and pull work. Every request is kept until its answer arrives; the requests of a worker that
 * stops heartbeating are re-posted to others (at most `maxRetries` times, never for a
 * `retry: false` command). At-least-once execution, exactly-once answer.
 */
export class RemoteDispatcher implements Dispatcher {
  readonly mode = 'remote';
  private host: DispatcherHost | null = null;
  private socket: Router | null = null;
  private out: SendQueue | null = null;
  private auth: Authenticator | null = null;
  private loop: Promise<void> | null = null;
  private tick: NodeJS.Timeout | null = null;
  private lastBeat = 0;
  private readonly workers = new Map<string, WorkerState>();
  /** What workers hold, by request id (a random first id: see RidTable). */
  private readonly pending = new RidTable<Pending>((Math.random() * 0x1_0000_0000) >>> 0);
  private queue: Pending[] = [];
  private head = 0;
  private flushQueued = false;
  private stopping = false;
  private readonly logged = new Set<string>();
  private endpoint = '';
  private readonly counts = {
    retried: 0,
    unavailable: 0,
    workersLost: 0,
    workersLeft: 0,
    lateResults: 0,
    droppedPushes: 0,
    batches: 0,
    results: 0,
    badMessages: 0,
    refusedVersion: 0,
  };

  constructor(private readonly options: ResolvedRemoteDispatch) {}

  async start(host: DispatcherHost): Promise<void> {
    this.host = host;
    const o = this.options;
    const logger = host.logger;
    warnIfExposed(o.bind, o.curve, logger);
    if (o.curve) this.auth = await startAuthenticator({ allow: o.curve.allow, logger });
    // No send high-water mark: credit already bounds what waits for a worker, and a ROUTER
    // past its mark would drop a BATCH silently. Linger: let the goodbye DISCONNECTs out.
    const socket = new Router({ linger: 500, sendHighWaterMark: 0, ...(o.curve ? routerCurveOptions(o.curve) : {}) });
    try {
      (socket as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(ZMQ_ROUTER_NOTIFY, 3);
    } catch (err) {
      // A libzmq without the draft API: dead workers are found by heartbeats alone.
      logger.debug({ err: (err as Error).message }, 'remote dispatch: no ZMQ_ROUTER_NOTIFY; worker deaths are found by heartbeats only');
    }
    try {
      // libzmq frees a closed socket's listener in its I/O thread, a little after close():
      // a gateway restarted in the same process may find its old address still taken for
      // a few milliseconds. Give that a second; a port held by someone else stays an error.
      for (let attempt = 0; ; attempt++) {
        try {
          await socket.bind(o.bind);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt >= 10) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } catch (err) {
      socket.close();
      await this.auth?.close();
      this.auth = null;
      throw diocpError('DIOCP_ERR_REMOTE_BIND', o.bind, (err as Error).message);
    }
    this.socket = socket;
    this.endpoint = socket.lastEndpoint ?? o.bind;
    this.out = new SendQueue(socket, (err) => logger.warn({ err: err.message }, 'remote dispatch: a message to a worker could not be sent'));
    this.loop = this.receive(socket);
    this.lastBeat = performance.now();
    this.tick = setInterval(this.onTick, Math.max(5, Math.min(50, Math.floor(o.heartbeatMs / 4))));
    this.tick.unref();
    logger.info({ endpoint: this.endpoint, curve: o.curve !== null }, `remote dispatch: waiting for workers on ${this.endpoint}`);
  }

  /** The bound address (with the real port when `bind` used `*`). */
  get boundEndpoint(): string {
    return this.endpoint;
  }

  // ---- requests from the gateway ----

  dispatch(batch: readonly DispatchRequest[]): void {
    const host = this.host!;
    const now = performance.now();
    const wait = this.options.noWorkerWaitMs;
    for (let i = 0; i < batch.length; i++) {
      const req = batch[i]!;
      if (this.stopping) {
        host.complete(req, frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN')));
        continue;
      }
      if (this.queue.length - this.head >= this.options.maxQueued) {
        this.unavailable(req, `${this.options.maxQueued} requests already wait for a worker (maxQueued)`);
        continue;
      }
      const p: Pending = { req, rid: 0, worker: null, reposts: 0, deadline: now + wait };
      req.tag = p;
      this.queue.push(p);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.head === this.queue.length) return;
    this.flushQueued = true;
    // Every read of this turn of the event loop joins the same batches.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.stopping) return;
    this.expire(performance.now());
    if (this.head === this.queue.length) return;
    const ready: WorkerState[] = [];
    for (const w of this.workers.values()) if (w.credit > 0) ready.push(w);
    if (ready.length === 0) return; // the tick expires what waits too long
    // Least-loaded first; the requests of one connection go to one worker (one batch keeps
    // their order and shares their session snapshot, as in local-pool).
    ready.sort((a, b) => a.held / a.ready.capacity - b.held / b.ready.capacity);
    let totalRoom = 0;
    for (const w of ready) totalRoom += w.credit;
    // Take what the workers have room for, from a bounded stretch of the queue (a flush
    // must not walk a long queue whose head waits for one busy worker).
    const taken: Pending[] = [];
    const scanLimit = this.head + totalRoom * 4 + 64;
    const host = this.host!;
    while (this.head < this.queue.length && taken.length < totalRoom && this.head < scanLimit) {
      const p = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Pending;
      if (p.req.done) continue; // answered already (it timed out while it waited)
      if (host.context(p.req.connectionId) === undefined) {
        this.unavailable(p.req, 'the connection closed before dispatch');
        continue;
      }
      taken.push(p);
    }
    if (taken.length === 0) return this.compact([]);
    // By connection id into k groups; the largest group goes to the least-loaded worker.
    const k = Math.min(ready.length, taken.length);
    let groups: Pending[][];
    if (k === 1) groups = [taken];
    else {
      groups = Array.from({ length: k }, () => []);
      for (let i = 0; i < taken.length; i++) groups[taken[i]!.req.connectionId % k]!.push(taken[i]!);
      groups.sort((a, b) => b.length - a.length);
    }
    const back: Pending[] = [];
    for (let j = 0; j < k; j++) {
      const g = groups[j]!;
      if (g.length === 0) break;
      const w = ready[j]!;
      const n = Math.min(g.length, w.credit);
      // What does not fit waits (a connection's later requests stay behind its earlier ones).
      for (let i = n; i < g.length; i++) back.push(g[i]!);
      for (let at = 0; at < n; at += MAX_BATCH) this.send(w, at === 0 && n === g.length && n <= MAX_BATCH ? g : g.slice(at, Math.min(n, at + MAX_BATCH)));
    }
    this.compact(back);
  };

  /** Put `front` back at the head of the queue; drop the consumed prefix when it is large. */
  private compact(front: Pending[]): void {
    if (front.length) this.queue = front.concat(this.queue.slice(this.head));
    else if (this.head === this.queue.length) this.queue = [];
    else if (this.head > 1024 && this.head * 2 > this.queue.length) this.queue = this.queue.slice(this.head);
    else return;
    this.head = 0;
  }

  private send(w: WorkerState, batch: Pending[]): void {
    const host = this.host!;
    const peers: Peer[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const req = p.req;
      p.worker = w;
      this.pending.add(p);
      w.held++;
      if (p.reposts > 0) w.retries++;
      const id = req.connectionId;
      if (!seen.has(id)) {
        seen.add(id);
        const ctx = host.context(id);
        peers.push(ctx ? [id, ctx.remoteAddress, ctx.remotePort, ctx.session.size ? [...ctx.session] : []] : [id, '', 0, []]);
      }
    }
    let frames: Buffer[];
    try {
      frames = encodeBatch(batch, peers);
    } catch (err) {
      // A session value MessagePack cannot encode (a function, say): send the batch without
      // sessions rather than not at all, and say why.
      host.logger.warn({ err: (err as Error).message }, 'remote dispatch: a session could not be encoded for a worker; sending the batch without sessions');
      for (const peer of peers) peer[3] = [];
      frames = encodeBatch(batch, peers);
    }
    this.counts.batches++;
    this.out!.send([w.id, ...frames]);
  }

  // ---- messages from workers ----

  private async receive(socket: Router): Promise<void> {
    try {
      for await (const msg of socket) {
        try {
          this.onMessage(msg as Buffer[]);
        } catch (err) {
          this.host!.logger.error({ err }, 'remote dispatch: handling a worker message failed');
        }
      }
    } catch (err) {
      if (!this.stopping) this.host!.logger.error({ err: (err as Error).message }, 'remote dispatch: the ROUTER stopped receiving');
    }
  }

  private onMessage(msg: Buffer[]): void {
    const id = msg[0]!;
    const key = id.toString('latin1');
    const w = this.workers.get(key);
    if (msg.length === 2 && msg[1]!.length === 0) {
      // ZMQ_ROUTER_NOTIFY: a peer's connection opened (not registered yet: nothing to do) or
      // closed. A worker whose connection closed is gone: a reconnect gets a new routing id.
      if (w !== undefined) {
        if (w.leaving && w.held === 0) this.remove(w);
        else this.lose(w, 'its connection closed');
      }
      return;
    }
    let m;
    try {
      m = decode(msg.length > 1 ? msg.slice(1) : []);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.badMessage(id, key, w, err);
      return;
    }
    const now = performance.now();
    if (w !== undefined) w.lastSeen = now;
    switch (m.type) {
      case Msg.Ready:
        this.onReady(id, key, w, m.body, now);
        return;
      case Msg.Heartbeat:
        if (w === undefined) this.out!.send([id, ...encodeSignal(Msg.Reset)]);
        return;
      case Msg.Result:
        // From a worker this gateway does not know (it restarted, or declared the worker
        // dead): answers to requests re-posted already. Dropped; its next HEARTBEAT gets RESET
        // (not this message: a stale answer may arrive right after its new READY).
        if (w === undefined) this.counts.lateResults += m.body.rid.length;
        else this.onResult(w, m.body);
        return;
      case Msg.Disconnect:
        if (w !== undefined) this.onDisconnect(w);
        return;
      default:
        this.badMessage(id, key, w, new WireError(`message type 0x0${m.type.toString(16)} goes from the gateway to workers, not back`));
    }
  }

  private badMessage(id: Buffer, key: string, w: WorkerState | undefined, err: WireError): void {
    const logger = this.host!.logger;
    const peer = w?.label ?? id.toString('hex');
    const version = (err as WireError & { version?: number }).version;
    if (version !== undefined) {
      this.counts.refusedVersion++;
      const e = diocpError('DIOCP_ERR_REMOTE_VERSION', version, WIRE_VERSION);
      if (this.logOnce(key)) logger.warn({ code: e.code, peer }, e.message);
      this.out!.send([id, ...encodeRefuse({ code: e.code, message: e.message })]);
    } else {
      this.counts.badMessages++;
      const e = diocpError('DIOCP_ERR_REMOTE_BAD_MESSAGE', peer, err.message);
      if (this.logOnce(key)) logger.warn({ code: e.code, peer }, e.message);
      // A worker we gave work to and can no longer understand: take its work back and tell it.
      if (w !== undefined) this.out!.send([id, ...encodeRefuse({ code: e.code, message: e.message })]);
    }
    if (w !== undefined) this.lose(w, 'it sent a malformed message');
  }

  private logOnce(key: string): boolean {
    if (this.logged.has(key) || this.logged.size >= MAX_LOGGED_PEERS) return false;
    this.logged.add(key);
    return true;
  }

  private onReady(id: Buffer, key: string, known: WorkerState | undefined, body: ReadyBody, now: number): void {
    const o = this.options;
    // A READY from a worker we know means it started over: what it held is lost.
    if (known !== undefined) this.lose(known, 'it announced itself again (READY) and so forgot what it held', known.held === 0);
    if (this.stopping) {
      this.out!.send([id, ...encodeSignal(Msg.Disconnect)]);
      return;
    }
    const w = new WorkerState(Buffer.from(id), key, body, now);
    this.workers.set(key, w);
    this.logged.delete(key);
    this.out!.send([id, ...encodeWelcome({ heartbeatMs: o.heartbeatMs, liveness: o.liveness })]);
    this.host!.logger.info({ worker: w.label, pid: body.pid, capacity: body.capacity, threads: body.threads, workers: this.workers.size }, 'remote dispatch: worker ready');
    this.scheduleFlush();
  }

  private onResult(w: WorkerState, r: DecodedResult): void {
    const host = this.host!;
    this.counts.results++;
    // Effects first, in the order they happened: a push precedes the response it came with.
    if (r.effects) this.applyEffects(r.effects);
    const n = r.rid.length;
    for (let i = 0; i < n; i++) {
      const rid = r.rid[i]!;
      const p = this.pending.get(rid);
      if (p === undefined || p.worker !== w) {
        this.counts.lateResults++;
        continue;
      }
      this.pending.delete(rid);
      w.held--;
      const st = r.status[i]!;
      if (st === 0) {
        w.done++;
        host.completeBytes(p.req, r.payload, r.offsets[i]!, r.offsets[i + 1]!);
      } else {
        w.failed++;
        host.complete(p.req, { status: st, error: errorBodyAt(r, i) });
      }
    }
    if (w.leaving && w.held === 0) this.remove(w);
    this.scheduleFlush();
  }

  private applyEffects(effects: Effect[]): void {
    this.counts.droppedPushes += applyEffects(this.host!, effects, 'a worker');
  }

  private onDisconnect(w: WorkerState): void {
    // It takes no more work and finishes everything it received (batches already on their
    // way included), so nothing needs a retry. Our DISCONNECT answer comes once we hold
    // nothing of it: then it knows every answer arrived and may exit.
    w.leaving = true;
    this.host!.logger.info({ worker: w.label, holding: w.held }, 'remote dispatch: worker leaving');
    if (w.held === 0) this.remove(w);
  }

  private remove(w: WorkerState): void {
    if (this.workers.get(w.key) !== w) return;
    this.workers.delete(w.key);
    this.counts.workersLeft++;
    this.out!.send([w.id, ...encodeSignal(Msg.Disconnect)]);
    this.host!.logger.info({ worker: w.label, done: w.done, failed: w.failed, workers: this.workers.size }, 'remote dispatch: worker left');
  }

  /** A worker is dead (or forgot its work): re-post or answer what it held. */
  private lose(w: WorkerState, why: string, quiet = false): void {
    if (this.workers.get(w.key) !== w) return;
    this.workers.delete(w.key);
    this.counts.workersLost++;
    if (!quiet) this.host!.logger.warn({ worker: w.label, pid: w.ready.pid, holding: w.held, why }, `remote dispatch: worker lost (${why}); re-posting what it held`);
    const now = performance.now();
    // Rare (a death), so a walk over everything pending beats a map per worker on every request.
    const held: Pending[] = [];
    for (const p of this.pending.values()) if (p.worker === w) held.push(p);
    for (const p of held) {
      this.pending.delete(p.rid);
      this.repost(p, w, why, now);
    }
    w.held = 0;
    this.scheduleFlush();
  }

  private repost(p: Pending, w: WorkerState, why: string, now: number): void {
    const req = p.req;
    p.worker = null;
    if (req.done) return; // answered already (a timeout): nothing to run again
    if (this.stopping) {
      this.host!.complete(req, frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN')));
    } else if (!req.route.retry) {
      this.unavailable(req, `worker ${w.label} was lost while holding it (${why}); not retried: the command is marked retry: false`);
    } else if (p.reposts >= this.options.maxRetries) {
      this.unavailable(req, `workers were lost ${p.reposts + 1} times while holding it (maxRetries ${this.options.maxRetries}); last: ${w.label}, ${why}`);
    } else {
      p.reposts++;
      this.counts.retried++;
      // A fresh wait: the repost may have to wait for a worker like a new request.
      p.deadline = now + this.options.noWorkerWaitMs;
      this.queue.push(p);
    }
  }

  private unavailable(req: DispatchRequest, why: string): void {
    this.counts.unavailable++;
    this.host!.complete(req, unavailable(why));
  }

  /** Answer UNAVAILABLE what waited past noWorkerWaitMs (the queue is in deadline order). */
  private expire(now: number): void {
    while (this.head < this.queue.length) {
      const p = this.queue[this.head]!;
      if (!p.req.done && p.deadline > now) break;
      this.queue[this.head++] = undefined as unknown as Pending;
      if (p.req.done) continue;
      const n = this.workers.size;
      this.unavailable(p.req, `no worker had room for it within ${this.options.noWorkerWaitMs} ms (noWorkerWaitMs; ${n} worker${n === 1 ? '' : 's'} connected)`);
    }
    this.compact([]);
  }

  private readonly onTick = (): void => {
    const now = performance.now();
    const o = this.options;
    const deadAfter = o.heartbeatMs * o.liveness;
    for (const w of [...this.workers.values()]) {
      if (now - w.lastSeen > deadAfter) this.lose(w, `no message for ${Math.round(now - w.lastSeen)} ms (liveness ${o.liveness} × heartbeatMs ${o.heartbeatMs})`);
    }
    if (now - this.lastBeat >= o.heartbeatMs) {
      this.lastBeat = now;
      const beat = encodeSignal(Msg.Heartbeat);
      for (const w of this.workers.values()) this.out!.send([w.id, ...beat]);
    }
    if (this.head < this.queue.length) {
      this.expire(now);
      this.scheduleFlush();
    }
  };

  // ---- lifecycle and stats ----

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
    const host = this.host;
    if (host !== null) {
      const gone = frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN'));
      // The gateway drained what it could before calling stop(): what is left is abandoned.
      for (let i = this.head; i < this.queue.length; i++) host.complete(this.queue[i]!.req, gone);
      for (const p of this.pending.values()) host.complete(p.req, gone);
    }
    this.queue = [];
    this.head = 0;
    this.pending.clear();
    // Tell the workers, so they look for the next gateway at once instead of after liveness.
    for (const w of this.workers.values()) this.out?.send([w.id, ...encodeSignal(Msg.Disconnect)]);
    this.workers.clear();
    if (this.out) {
      await Promise.race([this.out.flushed(), new Promise((r) => setTimeout(r, 200))]);
      this.out.close();
    }
    // Not unbind() first: with peers dying at the same moment (kill -9) it tripped a libzmq
    // assertion (pipe.cpp, term_ack) in our chaos test. close() frees the address a little
    // later; start() retries a just-freed address.
    this.socket?.close();
    await this.loop;
    await this.auth?.close();
    this.auth = null;
  }

  stats(): RemoteDispatchStats {
    const now = performance.now();
    return {
      mode: 'remote',
      endpoint: this.endpoint,
      workers: [...this.workers.values()].map((w) => ({
        id: w.id.toString('hex'),
        name: w.ready.name,
        pid: w.ready.pid,
        capacity: w.ready.capacity,
        threads: w.ready.threads,
        inFlight: w.held,
        done: w.done,
        failed: w.failed,
        retries: w.retries,
        lastHeartbeatMs: Math.round(now - w.lastSeen),
        state: w.leaving ? 'leaving' : 'ready',
      })),
      queued: this.queue.length - this.head,
      ...this.counts,
      refusedCurve: this.auth?.refused ?? 0,
    };
  }
}

function unavailable(why: string): Outcome {
  const e = diocpError('DIOCP_ERR_DISPATCH_UNAVAILABLE', why);
  return { status: Status.UNAVAILABLE, error: { code: Status.UNAVAILABLE, message: e.message, error: e.code } };
}
