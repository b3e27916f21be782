// The logic-process side of remote dispatch (`diocp worker`): a DEALER that announces its
// credit, runs the batches the gateway sends (inline, or on its own @diocp/jobs pool), answers
// them, heartbeats, reconnects with backoff (Paranoid Pirate), and leaves gracefully.
import os from 'node:os';
import { Dealer } from 'zeromq';
import { createJobPool, type JobPool } from '@diocp/jobs';
import { diocpError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Router } from '../../router/router.js';
import { Status } from '../../protocol/constants.js';
import type { PoolInit, PoolResult } from '../pool-protocol.js';
import type { Outcome } from '../outcome.js';
import type { Effect } from '../pool-protocol.js';
import { dispatchBatch, runBatchStreaming, warmThread } from '../pool-thread.js';
import { dealerCurveOptions, type CurveClientConfig } from './curve.js';
import { SendQueue } from './send-queue.js';
import { decode, encodeOutcomes, encodeReady, encodeResult, encodeSignal, Msg, WireError, type DecodedBatch } from './wire.js';

export interface RemoteWorkerOptions {
  /** Gateway ROUTER address, e.g. tcp://127.0.0.1:7002. */
  connect: string;
  /** Most requests held at once: the credit announced in READY. */
  concurrency: number;
  /** Handler threads; 0 runs handlers on this process's main thread with `router`. */
  threads: number;
  /** The handler table, for threads = 0. */
  router: Router | null;
  /** How threads build their tables (threads > 0), and maxFrameSize / debug for both. */
  init: PoolInit;
  name?: string;
  curve?: CurveClientConfig | null;
  logger: Logger;
  /** Heartbeat interval and liveness until the gateway's WELCOME says otherwise. */
  heartbeatMs?: number;
  liveness?: number;
  /** Longest wait between reconnection attempts (ms); default DEFAULT_MAX_BACKOFF_MS. */
  maxBackoffMs?: number;
}

/**
 * Reconnection attempts start one heartbeat interval apart and double up to this: a restarted
 * gateway is found at most this long after it is back.
 */
export const DEFAULT_MAX_BACKOFF_MS = 2000;

/** A worker process's connection to its gateway. `closed` resolves with the exit code. */
export class RemoteWorker {
  readonly closed: Promise<number>;
  private resolveClosed!: (code: number) => void;
  private socket: Dealer | null = null;
  private out: SendQueue | null = null;
  private pool: JobPool | null = null;
  private readonly initKey: string;
  /** Bumped per socket and per RESET: answers of an older generation are not sent. */
  private gen = 0;
  private welcomed = false;
  private heartbeatMs: number;
  private liveness: number;
  private lastHeard = 0;
  private lastSent = 0;
  private backoff: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private tick: NodeJS.Timeout | null = null;
  private held = 0;
  private draining = false;
  private acked = false;
  private drainDeadline = 0;
  private finished = false;
  private readonly name: string;
  private connectedOnce = false;
  /** Requests answered, for the log line at exit. */
  private answered = 0;

  constructor(private readonly options: RemoteWorkerOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.liveness = options.liveness ?? 3;
    this.backoff = Math.min(this.heartbeatMs, options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
    this.name = options.name ?? `${os.hostname()}:${process.pid}`;
    this.initKey = JSON.stringify(options.init);
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  private get logger(): Logger {
    return this.options.logger;
  }

  /** Build the handler threads (if any), connect, announce. Throws on a bad address. */
  async start(): Promise<void> {
    const t = this.options.threads;
    if (t > 0) {
      this.pool = createJobPool({ minThreads: t, maxThreads: t });
      try {
        await Promise.all(Array.from({ length: t }, () => this.pool!.post(warmThread, { init: this.options.init, initKey: this.initKey }, { isolated: true }).result));
      } catch (err) {
        await this.pool.destroy();
        throw err;
      }
    } else if (this.options.router === null) {
      throw new Error('RemoteWorker: threads = 0 needs a router');
    }
    this.connect(true);
    this.tick = setInterval(this.onTick, 25);
  }

  private connect(first = false): void {
    this.reconnectTimer = null;
    if (this.finished) return;
    const curve = this.options.curve ? dealerCurveOptions(this.options.curve) : {};
    // linger 0: a socket given up on takes its stale messages with it; a graceful exit
    // raises it before closing so the last answers get out.
    const socket = new Dealer({ linger: 0, sendHighWaterMark: 0, ...curve });
    try {
      socket.connect(this.options.connect);
    } catch (err) {
      socket.close();
      const e = diocpError('DIOCP_ERR_REMOTE_CONNECT', this.options.connect, (err as Error).message);
      if (first) throw e;
      this.logger.error({ code: e.code }, e.message);
      this.finish(1);
      return;
    }
    this.socket = socket;
    this.gen++;
    this.welcomed = false;
    this.out = new SendQueue(socket, (err) => this.logger.debug({ err: err.message }, 'worker: a message could not be sent'));
    this.lastHeard = performance.now();
    this.sendReady();
    void this.receive(socket);
  }

  private sendReady(): void {
    const o = this.options;
    this.send(encodeReady({ capacity: o.concurrency, pid: process.pid, name: this.name, threads: o.threads }));
  }

  private send(frames: Buffer[]): void {
    this.lastSent = performance.now();
    this.out?.send(frames);
  }

  private async receive(socket: Dealer): Promise<void> {
    try {
      for await (const msg of socket) {
        if (this.socket !== socket) break;
        this.onMessage(msg as Buffer[]);
      }
    } catch (err) {
      if (this.socket === socket && !this.finished) this.logger.warn({ err: (err as Error).message }, 'worker: receiving from the gateway failed');
    }
  }

  private onMessage(frames: Buffer[]): void {
    let m;
    try {
      m = decode(frames);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.logger.warn({ code: 'DIOCP_ERR_REMOTE_BAD_MESSAGE' }, `worker: malformed message from the gateway: ${err.message}`);
      return;
    }
    this.lastHeard = performance.now();
    switch (m.type) {
      case Msg.Welcome:
        this.welcomed = true;
        this.heartbeatMs = m.body.heartbeatMs;
        this.liveness = m.body.liveness;
        this.backoff = Math.min(this.heartbeatMs, this.options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
        this.logger.info({ gateway: this.options.connect, heartbeatMs: this.heartbeatMs, capacity: this.options.concurrency, reconnected: this.connectedOnce }, 'worker: connected to the gateway');
        this.connectedOnce = true;
        if (this.draining) this.send(encodeSignal(Msg.Disconnect));
        return;
      case Msg.Heartbeat:
        return;
      case Msg.Batch:
        this.run(m.body, this.gen);
        return;
      case Msg.Reset:
        // The gateway does not know us (it restarted, or gave up on us): what we hold was
        // re-posted there already; start a new session on the same socket.
        this.logger.info('worker: the gateway does not know this worker (it restarted?); announcing again');
        this.gen++;
        this.welcomed = false;
        this.lastHeard = performance.now();
        this.sendReady();
        return;
      case Msg.Disconnect:
        if (this.draining) {
          this.acked = true;
          this.maybeFinish();
        } else {
          this.logger.info('worker: the gateway is stopping; looking for it again');
          this.reconnect();
        }
        return;
      case Msg.Refuse: {
        const e = diocpError('DIOCP_ERR_REMOTE_REFUSED', `${m.body.message} [${m.body.code}]`);
        this.logger.error({ code: e.code, reason: m.body.code }, e.message);
        this.finish(1);
        return;
      }
      default:
        this.logger.warn({ code: 'DIOCP_ERR_REMOTE_BAD_MESSAGE', type: m.type }, 'worker: the gateway sent a message only workers send');
    }
  }

  private run(b: DecodedBatch, gen: number): void {
    const n = b.rid.length;
    this.held += n;
    const o = this.options;
    const batch = { init: o.init, conn: b.conn, cmd: b.cmd, payload: b.payload, offsets: b.offsets, peers: b.peers };
    if (this.pool === null) {
      // Answers go as they are ready: a slow request does not hold back the rest of its batch.
      runBatchStreaming(batch, o.router!, this.logger, (indexes, outcomes, effects) => this.answerSome(b, indexes, outcomes, effects, gen));
      return;
    }
    // On the worker's own threads the batch is answered whole, as in local-pool. Only the
    // batch's own bytes cross to the thread (the message buffer may be larger).
    const data = { ...batch, status: new SharedArrayBuffer(4 * (n + 1)), initKey: this.initKey, payload: new Uint8Array(b.payload) };
    this.pool.post(dispatchBatch, data, { retry: false }).result.then(
      (r) => this.answer(b, r, gen),
      (err: Error) => this.answer(b, threadFailed(n, err), gen),
    );
  }

  private answerSome(b: DecodedBatch, indexes: number[], outcomes: Outcome[], effects: Effect[] | null, gen: number): void {
    const n = indexes.length;
    this.held -= n;
    this.answered += n;
    if (gen === this.gen && !this.finished) {
      const rid = indexes.map((i) => b.rid[i]!);
      let frames: Buffer[];
      try {
        frames = encodeOutcomes(rid, outcomes, effects);
      } catch (err) {
        // Effects MessagePack cannot encode (a session value that is a function, say).
        this.logger.warn({ err: (err as Error).message }, 'worker: handler effects could not be encoded; answering without them');
        frames = encodeOutcomes(rid, outcomes, null);
      }
      this.send(frames);
    }
    this.maybeFinish();
  }

  private answer(b: DecodedBatch, r: PoolResult, gen: number): void {
    this.held -= b.rid.length;
    this.answered += b.rid.length;
    if (gen === this.gen && !this.finished) {
      let frames: Buffer[];
      try {
        frames = encodeResult(b.rid, r);
      } catch (err) {
        // Effects MessagePack cannot encode (a session value that is a function, say).
        this.logger.warn({ err: (err as Error).message }, 'worker: handler effects could not be encoded; answering without them');
        frames = encodeResult(b.rid, { ...r, effects: null });
      }
      this.send(frames);
    }
    this.maybeFinish();
  }

  private readonly onTick = (): void => {
    if (this.finished) return;
    const now = performance.now();
    if (this.draining && this.drainDeadline > 0 && now > this.drainDeadline && !this.acked) {
      // Everything is answered but the gateway never confirmed it got the answers: go anyway.
      this.logger.warn('worker: the gateway did not confirm the last answers; exiting anyway');
      this.acked = true;
      this.maybeFinish();
    }
    if (this.socket === null) return;
    if (now - this.lastHeard > this.heartbeatMs * this.liveness) {
      this.logger.warn({ silentMs: Math.round(now - this.lastHeard), retryInMs: this.backoff }, this.welcomed ? 'worker: the gateway went silent; reconnecting' : 'worker: no answer from the gateway yet; retrying');
      this.reconnect();
      return;
    }
    if (this.welcomed && now - this.lastSent >= this.heartbeatMs && this.out?.idle) this.send(encodeSignal(Msg.Heartbeat));
  };

  /** Paranoid Pirate: drop the socket (and its stale messages), wait, start a new session. */
  private reconnect(): void {
    this.closeSocket(0);
    if (this.finished || this.reconnectTimer) return;
    if (this.draining && this.held === 0) return this.finish(0);
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private closeSocket(linger: number): void {
    const s = this.socket;
    if (s === null) return;
    this.socket = null;
    this.gen++;
    this.welcomed = false;
    this.out?.close();
    this.out = null;
    s.linger = linger;
    s.close();
  }

  /**
   * Graceful stop (SIGTERM): tell the gateway to send nothing more (DISCONNECT), finish what
   * is held and what was already on its way, answer it, and close once the gateway answers
   * DISCONNECT, which it does when it holds no request of ours any more (so every answer
   * arrived). Resolves with the exit code.
   */
  stop(): Promise<number> {
    if (!this.draining && !this.finished) {
      this.draining = true;
      this.logger.info({ holding: this.held }, 'worker: stopping; finishing what it holds');
      if (this.welcomed) this.send(encodeSignal(Msg.Disconnect));
      else this.acked = true; // nobody to tell
      this.maybeFinish();
    }
    return this.closed;
  }

  private maybeFinish(): void {
    if (!this.draining || this.held > 0) return;
    if (this.acked) this.finish(0);
    else if (this.drainDeadline === 0) this.drainDeadline = performance.now() + this.heartbeatMs * this.liveness;
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tick) clearInterval(this.tick);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const out = this.out;
    void (async () => {
      if (out) await Promise.race([out.flushed(), new Promise((r) => setTimeout(r, 1000))]);
      // Let the last answers leave before the socket goes.
      this.closeSocket(1000);
      await this.pool?.destroy();
      this.logger.info({ answered: this.answered, code }, 'worker: stopped');
      this.resolveClosed(code);
    })();
  }
}

/** A handler thread died under a batch: answer each of its requests with an error. */
function threadFailed(n: number, err: Error): PoolResult {
  const st = new Uint16Array(n).fill(Status.HANDLER_ERROR);
  const errors: PoolResult['errors'] = {};
  for (let i = 0; i < n; i++) errors[i] = { code: Status.HANDLER_ERROR, message: `the worker's handler thread failed: ${err.message}`, error: 'DIOCP_ERR_DISPATCH_THREAD_DIED' };
  return { st, payload: new Uint8Array(0), offsets: new Uint32Array(n + 1), errors, effects: null };
}
