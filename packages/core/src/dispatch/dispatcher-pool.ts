import { Buffer } from 'node:buffer';
import { createJobPool, type JobHandle, type JobPool } from '@diocp/jobs';
import { diocpError } from '../errors.js';
import { Status } from '../protocol/constants.js';
import { applyEffects } from './apply-effects.js';
import type { Dispatcher, DispatcherHost, DispatchRequest } from './dispatcher.js';
import { frameworkError, type Outcome } from './outcome.js';
import { dispatchBatch, warmThread } from './pool-thread.js';
import { PeerTableBuilder, ReqState, type PoolBatch, type PoolInit, type PoolResult } from './pool-protocol.js';

/** What every thread needs to build its handler table (PoolInit), and how many threads. */
export interface PoolDispatcherOptions extends PoolInit {
  /** Handler threads. */
  threads: number;
}

/** Most requests in one batch: bounds what one stuck or crashed thread can hold. */
const MAX_BATCH = 512;
/** A request running when its thread died is tried at most this often in all. */
const MAX_ATTEMPTS = 2;
/** A request is re-posted at most this often, whatever the reason (bounds any crash loop). */
const MAX_REPOSTS = 5;
/**
 * After a request timed out, a batch whose thread showed no sign of life for this long is
 * stuck (an endless loop): its thread is replaced. Ten heartbeats of a live thread fit in it.
 */
const STUCK_MS = 100;

interface InFlight {
  reqs: DispatchRequest[];
  status: Int32Array;
  handle: JobHandle<PoolResult>;
  watchdog: NodeJS.Timeout | null;
}

/**
 * Runs handlers on a worker-thread pool (@diocp/jobs): the requests of a tick go out as a
 * few batches, one job each; every thread builds its own DI container and handler table.
 * A thread that dies or is stuck past a timeout is replaced, and the requests it held are
 * re-posted (unless their command says `retry: false`) or answered with an error.
 */
export class PoolDispatcher implements Dispatcher {
  readonly mode = 'local-pool';
  private host: DispatcherHost | null = null;
  private pool: JobPool | null = null;
  private readonly init: PoolInit;
  private readonly initKey: string;
  private pending: DispatchRequest[] = [];
  private flushQueued = false;
  private readonly inflight = new Set<InFlight>();
  /** Times a request was running when its thread died (it may be the cause). */
  private readonly attempts = new Map<DispatchRequest, number>();
  /** Times a request was re-posted for any reason. */
  private readonly reposts = new Map<DispatchRequest, number>();
  private stopping = false;

  constructor(private readonly options: PoolDispatcherOptions) {
    const { threads: _t, ...init } = options;
    this.init = init;
    this.initKey = JSON.stringify(this.init);
  }

  async start(host: DispatcherHost): Promise<void> {
    this.host = host;
    const t = this.options.threads;
    this.pool = createJobPool({
      minThreads: t,
      maxThreads: t,
      onError: (_job, err) => host.logger.debug({ err: err.message }, 'handler thread job failed'),
    });
    // Build every thread's handler table before the first request: a module that does not
    // load or a dependency that cannot be injected stops the start, as it does inline.
    const warm = Array.from({ length: t }, () => this.pool!.post(warmThread, { init: this.init, initKey: this.initKey }, { isolated: true }).result);
    try {
      await Promise.all(warm);
    } catch (err) {
      await this.pool.destroy();
      throw err;
    }
  }

  dispatch(batch: readonly DispatchRequest[]): void {
    if (this.stopping) {
      for (const r of batch) this.host!.complete(r, frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN')));
      return;
    }
    for (let i = 0; i < batch.length; i++) this.pending.push(batch[i]!);
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Every read of this turn of the event loop joins the same batches.
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const all = this.pending;
    this.pending = [];
    if (all.length === 0) return;
    // One batch per thread when there is enough work, each at most about MAX_BATCH. The
    // requests of one connection stay together and in order, as they would run inline.
    const parts = Math.max(Math.min(this.options.threads, all.length), Math.ceil(all.length / MAX_BATCH));
    if (parts === 1) {
      this.post(all);
      return;
    }
    // By connection id: cheap, keeps a connection's requests in one batch, spreads the many
    // connections of a busy server evenly enough.
    const batches: DispatchRequest[][] = Array.from({ length: parts }, () => []);
    for (let i = 0; i < all.length; i++) {
      const r = all[i]!;
      batches[r.connectionId % parts]!.push(r);
    }
    for (const b of batches) if (b.length) this.post(b);
  };

  private post(reqs: DispatchRequest[]): void {
    const host = this.host!;
    const n = reqs.length;
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += reqs[i]!.payload.length;
    // Shared memory: the payloads reach the thread without another copy (and stay readable
    // if the batch has to be sent again).
    const payload = new Uint8Array(new SharedArrayBuffer(bytes));
    const offsets = new Uint32Array(n + 1);
    const conn = new Float64Array(n);
    const cmd = new Uint16Array(n);
    const peers = new PeerTableBuilder();
    let at = 0;
    for (let i = 0; i < n; i++) {
      const r = reqs[i]!;
      offsets[i] = at;
      payload.set(r.payload, at);
      at += r.payload.length;
      conn[i] = r.connectionId;
      cmd[i] = r.command;
      if (!peers.has(r.connectionId)) {
        const ctx = host.context(r.connectionId);
        if (ctx) peers.add(r.connectionId, ctx.remoteAddress, ctx.remotePort, ctx.session.size ? [...ctx.session] : []);
        else peers.add(r.connectionId, '', 0, []);
      }
    }
    offsets[n] = at;
    const statusBuf = new SharedArrayBuffer(4 * (n + 1));
    const data: PoolBatch = { init: this.init, initKey: this.initKey, status: statusBuf, conn, cmd, payload, offsets, peers: peers.build() };
    // retry: false — a batch is never re-run whole; this dispatcher decides per request.
    const handle = this.pool!.post(dispatchBatch, data, { retry: false });
    const b: InFlight = { reqs, status: new Int32Array(statusBuf), handle, watchdog: null };
    this.inflight.add(b);
    for (let i = 0; i < n; i++) reqs[i]!.tag = b;
    handle.result.then(
      (res) => this.onResult(b, res),
      (err: Error) => this.onFailed(b, err),
    );
  }

  private settle(b: InFlight): void {
    this.inflight.delete(b);
    if (b.watchdog) clearTimeout(b.watchdog);
  }

  private onResult(b: InFlight, res: PoolResult): void {
    this.settle(b);
    const host = this.host!;
    if (res.effects) applyEffects(host, res.effects, 'a thread');
    const buf = Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength);
    const failedBefore = this.attempts.size + this.reposts.size > 0;
    for (let i = 0; i < b.reqs.length; i++) {
      const r = b.reqs[i]!;
      if (failedBefore) this.forget(r);
      const st = res.st[i]!;
      if (st === 0) host.completeBytes(r, buf, res.offsets[i]!, res.offsets[i + 1]!);
      else host.complete(r, { status: st, error: res.errors![i]! });
    }
  }

  /**
   * The batch's thread died (or was ended as stuck): decide request by request. Requests that
   * had not started run elsewhere. Requests that had finished lost their result with the
   * thread: they run again unless `retry: false`. Requests still running may be what killed
   * the thread: they run again alone (so they cannot take others down with them), at most
   * MAX_ATTEMPTS times in all.
   */
  private onFailed(b: InFlight, err: Error): void {
    this.settle(b);
    const host = this.host!;
    const code = (err as { code?: string }).code;
    if (code !== 'DIOCP_ERR_JOBS_THREAD_DIED' && code !== 'DIOCP_ERR_JOBS_CANCELLED') {
      // Not a dead thread: the batch itself failed (its thread could not build the handler
      // table, say). Running it again would fail the same way.
      host.logger.error({ err: err.message, code }, 'a batch of requests failed in its handler thread');
      for (const r of b.reqs) {
        this.forget(r);
        if (!r.done) host.complete(r, failure(Status.HANDLER_ERROR, `the handler thread could not run it: ${err.message}`));
      }
      return;
    }
    const again: DispatchRequest[] = [];
    const alone: DispatchRequest[] = [];
    for (let i = 0; i < b.reqs.length; i++) {
      const r = b.reqs[i]!;
      const st = Atomics.load(b.status, i);
      const reposts = (this.reposts.get(r) ?? 0) + 1;
      if (this.stopping) {
        this.forget(r);
        host.complete(r, frameworkError(diocpError('DIOCP_ERR_GATEWAY_SHUTTING_DOWN')));
      } else if (r.done) {
        this.forget(r); // already answered (it timed out): nothing to re-run
      } else if (st !== ReqState.Queued && !r.route.retry) {
        this.forget(r);
        host.complete(r, failure(Status.UNAVAILABLE, `the handler thread holding it died (${err.message}); not retried: the command is marked retry: false`));
      } else if (reposts > MAX_REPOSTS) {
        this.forget(r);
        host.complete(r, failure(Status.UNAVAILABLE, `handler threads died ${reposts - 1} times while holding it (${err.message})`));
      } else if (st === ReqState.Started) {
        const tries = (this.attempts.get(r) ?? 1) + 1;
        if (tries > MAX_ATTEMPTS) {
          this.forget(r);
          host.complete(r, failure(Status.HANDLER_ERROR, `the handler thread died while running it, ${tries - 1} times (${err.message})`));
          continue;
        }
        this.attempts.set(r, tries);
        this.reposts.set(r, reposts);
        alone.push(r);
      } else {
        this.reposts.set(r, reposts);
        again.push(r);
      }
    }
    if (again.length || alone.length) {
      host.logger.warn({ reposted: again.length + alone.length, err: err.message }, 'a handler thread died; re-posting its requests');
      if (again.length) this.post(again);
      for (const r of alone) this.post([r]);
    }
  }

  private forget(r: DispatchRequest): void {
    this.attempts.delete(r);
    this.reposts.delete(r);
  }

  /** The gateway answered TIMEOUT: if the thread holding the request is stuck, replace it. */
  timedOut(request: DispatchRequest): void {
    const b = request.tag as InFlight | null;
    if (b === null || !this.inflight.has(b) || b.watchdog !== null) return;
    const n = b.reqs.length;
    const progress = Atomics.load(b.status, n);
    b.watchdog = setTimeout(() => {
      b.watchdog = null;
      if (!this.inflight.has(b)) return;
      if (Atomics.load(b.status, n) === progress && b.reqs.some((_, i) => Atomics.load(b.status, i) === ReqState.Started)) {
        this.host!.logger.warn({ requests: n }, 'a handler thread is stuck past a timeout; replacing it');
        b.handle.cancel({ force: true });
      }
    }, STUCK_MS);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.pending.length) this.flush();
    // The gateway has answered or given up on everything by now: what still runs is stuck
    // or late, so end those threads rather than wait for them.
    if (this.inflight.size) await this.pool?.destroy();
    else await this.pool?.close();
  }
}

function failure(status: number, message: string): Outcome {
  return { status, error: { code: status, message, error: status === Status.UNAVAILABLE ? 'DIOCP_ERR_DISPATCH_UNAVAILABLE' : 'DIOCP_ERR_DISPATCH_THREAD_DIED' } };
}
