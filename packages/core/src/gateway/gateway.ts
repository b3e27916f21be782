import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Frame } from '../codec/frame.js';
import { jsonCodec } from '../codec/payload-codecs.js';
import { encodePushPayload, exceptIds } from '../dispatch/push-payload.js';
import type { Dispatcher, DispatcherHost, DispatchRequest } from '../dispatch/dispatcher.js';
import { InlineDispatcher } from '../dispatch/dispatcher-inline.js';
import { runHandlerFast } from '../dispatch/run-handler.js';
import { frameworkError, type ErrorBody, type Outcome } from '../dispatch/outcome.js';
import { diocpError, type DiocpError, type ProtocolError } from '../errors.js';
import { Flags, PING_COMMAND, Status, HEADER_SIZE } from '../protocol/constants.js';
import type { Route } from '../router/route.js';
import type { Router } from '../router/router.js';
import type { CloseReason, RemoteAddress, Transport, TransportEvents } from '../transport/transport.js';
import type { Context, GatewayApi } from './context.js';
import { DeadlineList, type DeadlineNode } from './deadlines.js';
import { GatewayCounters, type GatewayStats } from './stats.js';

export interface GatewayOptions {
  /** Requests one connection may have in flight; past it: OVERLOADED. */
  maxInFlightPerConnection: number;
  /** Requests the whole server may have in flight; past it: OVERLOADED. */
  maxInFlight: number;
  /** Largest payload the gateway sends; a bigger response is answered HANDLER_ERROR instead. */
  maxFrameSize: number;
  /** Put stack traces in HANDLER_ERROR frames. */
  debug: boolean;
  logger: Logger;
}

// Connection ids are slot + generation × SLOT_SPACE: a slot is reused, an id never is
// (DIOCP's "ContextDNA"). 2^22 slots × 2^31 generations stays inside 2^53.
const SLOT_SPACE = 2 ** 22;
const MAX_GENERATION = 2 ** 31;
/** Sent bytes are added to the 64-bit counter at the latest at this many (doubles are exact to 2^53). */
const SENT_FOLD = 2 ** 48;

class Connection implements Context {
  readonly session = new Map<string, unknown>();
  inFlight = 0;
  open = true;
  /** Ordered requests waiting for the one running. */
  orderedQueue: GatewayRequest[] | null = null;
  orderedBusy = false;
  private log: Logger | null = null;

  constructor(
    private readonly gw: Gateway,
    readonly connectionId: number,
    readonly transportId: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  push(command: number, payload?: unknown): boolean {
    return this.gw.push(this.connectionId, command, payload);
  }

  get gateway(): GatewayApi {
    return this.gw;
  }

  get logger(): Logger {
    return (this.log ??= this.gw.logger.child({ conn: this.connectionId, remote: `${this.remoteAddress}:${this.remotePort}` }));
  }
}

class GatewayRequest implements DispatchRequest, DeadlineNode {
  done = false;
  tag: unknown = null;
  deadline = 0;
  prev: DeadlineNode | null = null;
  next: DeadlineNode | null = null;
  list: DeadlineList | null = null;
  constructor(
    readonly conn: Connection,
    readonly command: number,
    readonly requestId: number,
    readonly oneway: boolean,
    readonly payload: Buffer,
    readonly route: Route,
  ) {}
  get connectionId(): number {
    return this.conn.connectionId;
  }
}

/**
 * Owns connections, limits, PING, error frames and counters; turns frames into dispatch
 * requests and outcomes into response frames. Knows nothing of sockets or of where
 * handlers run.
 */
export class Gateway implements TransportEvents, DispatcherHost, GatewayApi {
  readonly logger: Logger;
  readonly debug: boolean;
  private readonly byTransport = new Map<number, Connection>();
  private readonly slots: (Connection | undefined)[] = [];
  private readonly generations: number[] = [];
  private readonly freeSlots: number[] = [];
  private readonly deadlines = new Map<number, DeadlineList>();
  private readonly counters = new GatewayCounters();
  private inFlight = 0;
  private draining: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /**
   * The built-in inline dispatcher: unordered requests are run straight from onFrames, and
   * one whose handler returns synchronously is answered without a request object or a batch.
   */
  private readonly inline: boolean;
  /** The read being delivered (onFrame … onFramesEnd): its connection, requests to dispatch, counts. */
  private readTid = -1;
  private readConn: Connection | undefined = undefined;
  private readBatch: GatewayRequest[] | null = null;
  private readFrames = 0;
  private readBytes = 0;
  /**
   * Frames and bytes sent since they were last added to the 64-bit counters: a number add per
   * frame here, the counters' calls once per read (onFramesEnd) and in stats(). Folded long
   * before a double stops being exact (SENT_FOLD).
   */
  private sentFrames = 0;
  private sentBytes = 0;

  constructor(
    private readonly options: GatewayOptions,
    private readonly router: Router,
    private readonly dispatcher: Dispatcher,
    private readonly transport: Transport,
  ) {
    this.logger = options.logger;
    this.debug = options.debug;
    this.inline = dispatcher instanceof InlineDispatcher;
  }

  // ---- transport events ----

  onOpen(tid: number, remote: RemoteAddress): void {
    let slot = this.freeSlots.pop();
    if (slot === undefined) slot = this.slots.length;
    const gen = ((this.generations[slot] ?? 0) + 1) % MAX_GENERATION;
    this.generations[slot] = gen;
    const conn = new Connection(this, gen * SLOT_SPACE + slot, tid, remote.address, remote.port);
    this.slots[slot] = conn;
    this.byTransport.set(tid, conn);
    const c = this.counters;
    c.accepted.inc();
    if (++c.connectionsNow > c.connectionsMax) c.connectionsMax = c.connectionsNow;
  }

  onClose(tid: number, reason: CloseReason): void {
    const conn = this.byTransport.get(tid);
    if (conn === undefined) return;
    if (this.readTid === tid) this.readTid = -1;
    this.byTransport.delete(tid);
    conn.open = false;
    const slot = conn.connectionId % SLOT_SPACE;
    this.slots[slot] = undefined;
    this.freeSlots.push(slot);
    this.counters.connectionsNow--;
    this.counters.closed.inc();
    // Ordered requests that never reached a handler are dropped with their connection.
    if (conn.orderedQueue) {
      for (const req of conn.orderedQueue) this.finish(req);
      conn.orderedQueue = null;
    }
    if (reason !== 'peer' && reason !== 'closed') conn.logger.debug({ reason }, 'connection closed');
  }

  onProtocolError(tid: number, error: ProtocolError): void {
    const conn = this.byTransport.get(tid);
    if (conn === undefined) return;
    conn.logger.warn({ err: error.code }, error.message);
    // A transport that answers protocol errors itself refuses this frame, having sent the same one.
    this.sendError(conn, error.command, error.requestId, { code: Status.PROTOCOL_ERROR, message: error.message, error: error.code }, this.transport.answersProtocolErrors === true);
    this.transport.close(tid);
  }

  onFrames(tid: number, frames: Frame[]): void {
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      this.onFrame(tid, f.flags, f.command, f.requestId, f.payload);
    }
    this.onFramesEnd(tid);
  }

  /** One frame of a read (the transport fast path; onFrames goes through here too). */
  onFrame(tid: number, flags: number, command: number, requestId: number, payload: Buffer): void {
    let conn = this.readConn;
    if (tid !== this.readTid) {
      conn = this.readConn = this.byTransport.get(tid);
      this.readTid = tid;
    }
    if (conn === undefined) return;
    this.readFrames++;
    this.readBytes += HEADER_SIZE + payload.length;
    const oneway = (flags & Flags.ONEWAY) !== 0;
    if (command === PING_COMMAND) {
      if (!oneway) this.send(conn, Flags.RESPONSE, PING_COMMAND, Status.OK, requestId, payload);
      return;
    }
    const route = this.router.get(command);
    if (route === undefined) {
      this.reject(conn, command, requestId, oneway, diocpError('DIOCP_ERR_ROUTER_UNKNOWN_COMMAND', command));
      return;
    }
    const perConn = this.options.maxInFlightPerConnection;
    const perServer = this.options.maxInFlight;
    if ((conn.inFlight >= perConn || this.inFlight >= perServer) && this.readBatch !== null) {
      // Hand over what this read gathered so far: handlers that finish at once free
      // their slots, so a long pipelined read of fast requests is not refused.
      this.dispatchRead();
    }
    if (conn.inFlight >= perConn || this.inFlight >= perServer) {
      const full = conn.inFlight >= perConn;
      this.reject(conn, command, requestId, oneway, diocpError('DIOCP_ERR_GATEWAY_OVERLOADED', full ? 'on this connection' : 'on this server', full ? perConn : perServer));
      return;
    }
    if (this.inline && !route.ordered && conn.open) {
      // Handlers run in arrival order: what was batched before this one goes first.
      if (this.readBatch !== null) this.dispatchRead();
      this.runInline(conn, command, requestId, oneway, payload, route);
      return;
    }
    const req = new GatewayRequest(conn, command, requestId, oneway, payload, route);
    conn.inFlight++;
    this.inFlight++;
    if (route.ordered) {
      if (conn.orderedBusy) {
        (conn.orderedQueue ??= []).push(req);
        return;
      }
      conn.orderedBusy = true;
    }
    (this.readBatch ??= []).push(req);
  }

  /** The end of a read: counters, and its batch to the dispatcher. */
  onFramesEnd(_tid: number): void {
    this.readTid = -1;
    this.readConn = undefined;
    const c = this.counters;
    if (this.readFrames > 0) {
      c.framesIn.add(this.readFrames);
      c.bytesIn.add(this.readBytes);
      this.readFrames = 0;
      this.readBytes = 0;
    }
    if (this.readBatch !== null) this.dispatchRead();
    if (this.sentFrames > 0) this.foldSent();
  }

  private foldSent(): void {
    const c = this.counters;
    c.framesOut.add(this.sentFrames);
    c.bytesOut.add(this.sentBytes);
    this.sentFrames = 0;
    this.sentBytes = 0;
  }

  private dispatchRead(): void {
    const batch = this.readBatch!;
    this.readBatch = null;
    this.dispatch(batch);
  }

  /**
   * The inline dispatcher's work for one unordered request, without its per-request objects:
   * a synchronous handler is answered at once (it never holds an in-flight slot past this
   * call, as before); an asynchronous one becomes a tracked request like any other.
   */
  private runInline(conn: Connection, command: number, requestId: number, oneway: boolean, payload: Buffer, route: Route): void {
    const outcome = runHandlerFast(route, payload, conn, this.debug);
    if (outcome instanceof Uint8Array) {
      this.answerOk(conn, oneway, command, requestId, outcome as Buffer, 0, outcome.length);
    } else if (outcome instanceof Promise) {
      const req = new GatewayRequest(conn, command, requestId, oneway, payload, route);
      conn.inFlight++;
      this.inFlight++;
      this.deadlineList(route.timeoutMs).add(req, performance.now());
      outcome.then((o) => this.complete(req, o));
    } else {
      this.answerError(conn, oneway, command, requestId, (outcome as { error: ErrorBody }).error);
    }
  }

  private dispatch(batch: GatewayRequest[]): void {
    this.dispatcher.dispatch(batch);
    // Handlers that finished synchronously need no tracking; the others are tracked for
    // their timeout (and, timeout or not, so that shutdown can answer them).
    let now = -1;
    for (let i = 0; i < batch.length; i++) {
      const req = batch[i]!;
      if (req.done) continue;
      if (now < 0) now = performance.now();
      this.deadlineList(req.route.timeoutMs).add(req, now);
    }
  }

  private deadlineList(ms: number): DeadlineList {
    let list = this.deadlines.get(ms);
    if (list === undefined) {
      list = new DeadlineList(ms, (node) => {
        const req = node as GatewayRequest;
        this.complete(req, frameworkError(diocpError('DIOCP_ERR_HANDLER_TIMEOUT', req.command, ms)));
        this.dispatcher.timedOut?.(req);
      });
      this.deadlines.set(ms, list);
    }
    return list;
  }

  private reject(conn: Connection, command: number, requestId: number, oneway: boolean, err: DiocpError): void {
    if (oneway) {
      this.counters.error(err.status!);
      conn.logger.warn({ err: err.code, command }, `ONEWAY dropped: ${err.message}`);
      return;
    }
    this.sendError(conn, command, requestId, { code: err.status!, message: err.message, error: err.code });
  }

  // ---- dispatcher host ----

  complete(request: DispatchRequest, outcome: Outcome): void {
    const req = this.take(request);
    if (req === null) return;
    if (outcome.status === 0) {
      const payload = (outcome as { payload: Buffer }).payload;
      this.answerOk(req.conn, req.oneway, req.command, req.requestId, payload, 0, payload.length);
    } else {
      this.answerError(req.conn, req.oneway, req.command, req.requestId, (outcome as { error: ErrorBody }).error);
    }
    this.next(req);
  }

  completeBytes(request: DispatchRequest, bytes: Buffer, start: number, end: number): void {
    const req = this.take(request);
    if (req === null) return;
    this.answerOk(req.conn, req.oneway, req.command, req.requestId, bytes, start, end);
    this.next(req);
  }

  /** The request, now answered-to-be and out of its deadline list; null if it was already. */
  private take(request: DispatchRequest): GatewayRequest | null {
    const req = request as GatewayRequest;
    if (req.done) return null;
    req.list?.remove(req);
    this.finish(req);
    return req;
  }

  private answerOk(conn: Connection, oneway: boolean, command: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    if (!conn.open) this.counters.lateReplies.inc();
    else if (oneway) return;
    else if (end - start <= this.options.maxFrameSize) this.send(conn, Flags.RESPONSE, command, Status.OK, requestId, bytes, start, end);
    else {
      const err = diocpError('DIOCP_ERR_GATEWAY_RESPONSE_TOO_LARGE', command, end - start, this.options.maxFrameSize);
      this.sendError(conn, command, requestId, { code: err.status!, message: err.message, error: err.code });
    }
  }

  private answerError(conn: Connection, oneway: boolean, command: number, requestId: number, error: ErrorBody): void {
    if (!conn.open) {
      this.counters.lateReplies.inc();
    } else if (!oneway) {
      this.sendError(conn, command, requestId, error);
    } else {
      this.counters.error(error.code);
      conn.logger.warn({ command, status: error.code }, `ONEWAY failed: ${error.message}`);
    }
  }

  /** An ordered request was answered: the next one of its connection may run. */
  private next(req: GatewayRequest): void {
    const conn = req.conn;
    if (req.route.ordered && conn.open) {
      const next = conn.orderedQueue?.shift();
      if (next !== undefined) this.dispatch([next]);
      else conn.orderedBusy = false;
    }
  }

  /** Release a request's in-flight slot; it is answered (or dropped) exactly once. */
  private finish(req: GatewayRequest): void {
    req.done = true;
    req.conn.inFlight--;
    if (--this.inFlight === 0 && this.draining) this.draining();
  }

  context(connectionId: number): Context | undefined {
    return this.lookup(connectionId);
  }

  private lookup(connectionId: number): Connection | undefined {
    const conn = this.slots[connectionId % SLOT_SPACE];
    return conn !== undefined && conn.connectionId === connectionId ? conn : undefined;
  }

  // ---- sending ----

  private send(conn: Connection, flags: number, command: number, status: number, requestId: number, payload: Uint8Array, start = 0, end = payload.length): boolean {
    if (!this.transport.send(conn.transportId, flags, command, status, requestId, payload, start, end)) return false;
    this.countSent(HEADER_SIZE + end - start);
    return true;
  }

  private countSent(bytes: number): void {
    this.sentFrames++;
    if ((this.sentBytes += bytes) >= SENT_FOLD) this.foldSent();
  }

  /** `sentIfRefused`: a refused frame went out anyway (the transport sent it itself): count it. */
  private sendError(conn: Connection, command: number, requestId: number, body: ErrorBody, sentIfRefused = false): void {
    this.counters.error(body.code);
    const bytes = jsonCodec.encode(body);
    if (!this.send(conn, Flags.RESPONSE | Flags.ERROR, command, body.code, requestId, bytes) && sentIfRefused) this.countSent(HEADER_SIZE + bytes.length);
  }

  // ---- GatewayApi ----

  get connectionCount(): number {
    return this.byTransport.size;
  }

  push(connectionId: number, command: number, payload?: unknown): boolean {
    const bytes = this.encodePush(command, payload);
    const conn = this.lookup(connectionId);
    if (conn === undefined || !conn.open) return false;
    return this.send(conn, Flags.PUSH, command, Status.OK, 0, bytes);
  }

  get gateway(): GatewayApi {
    return this;
  }

  broadcast(command: number, payload?: unknown, filter?: ((ctx: Context) => boolean) | { except?: number | readonly number[] }): number {
    const bytes = this.encodePush(command, payload);
    const fn = typeof filter === 'function' ? filter : undefined;
    const except = typeof filter === 'object' ? exceptIds(filter) : undefined;
    let n = 0;
    for (const conn of this.byTransport.values()) {
      if (fn !== undefined && !fn(conn)) continue;
      if (except !== undefined && except.has(conn.connectionId)) continue;
      if (this.send(conn, Flags.PUSH, command, Status.OK, 0, bytes)) n++;
    }
    return n;
  }

  private encodePush(command: number, payload: unknown): Uint8Array {
    return encodePushPayload(this.router, command, payload, this.options.maxFrameSize);
  }

  // ---- lifecycle ----

  /**
   * Graceful shutdown: stop accepting, stop reading, answer every request already read
   * (waiting at most `timeoutMs`; what is still running then is answered UNAVAILABLE),
   * flush, close.
   */
  close(timeoutMs: number): Promise<void> {
    return (this.closing ??= this.doClose(timeoutMs));
  }

  private async doClose(timeoutMs: number): Promise<void> {
    await this.transport.stopAccepting();
    this.transport.pauseReading();
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.draining = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.draining = null;
    }
    if (this.inFlight > 0) {
      this.logger.warn({ inFlight: this.inFlight }, 'shutdown timeout: answering what is still running with UNAVAILABLE');
      const gone = frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN'));
      for (const conn of this.byTransport.values()) {
        const queued = conn.orderedQueue ?? [];
        conn.orderedQueue = null;
        for (const req of queued) this.complete(req, gone);
      }
      for (const list of this.deadlines.values()) list.drain((node) => this.complete(node as GatewayRequest, gone));
    }
    await this.dispatcher.stop();
    for (const list of this.deadlines.values()) list.drain(() => {});
    await this.transport.shutdown();
  }

  stats(): GatewayStats {
    this.foldSent();
    const c = this.counters;
    const t = this.transport.stats();
    return {
      connections: { now: c.connectionsNow, max: c.connectionsMax, accepted: c.accepted.value, closed: c.closed.value },
      framesIn: c.framesIn.value,
      framesOut: c.framesOut.value,
      bytesIn: c.bytesIn.value,
      bytesOut: c.bytesOut.value,
      errors: c.errorSnapshot(),
      inFlight: this.inFlight,
      lateReplies: c.lateReplies.value,
      closedIdle: t.closedIdle,
      closedSlow: t.closedSlow,
      rejectedConnections: t.rejected,
      sendQueueBytes: t.sendQueueBytes ?? 0,
    };
  }
}
