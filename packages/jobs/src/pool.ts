import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { Cron } from 'croner';
import { JOB, isJobDefinition, type JobContext, type JobDefinition } from './define-job.js';
import { Deque } from './deque.js';
import { JobError, JobFailedError, jobError } from './errors.js';
import { Job, type JobHandle, type Repeat } from './handle.js';
import { resolveJobPoolOptions, type JobPoolOptions, type ResolvedJobPoolOptions } from './options.js';
import { CANCEL_SLOTS, RunState, type BatchTask, type JobOutcome, type JobSpec, type SerializedError, type WorkerData } from './protocol.js';
import { StatsBook, type PoolStats } from './stats.js';
import { JobGroup, type GroupOptions } from './group.js';
import { runParallelFor, type ParallelForOptions, type ParallelForResult } from './parallel-for.js';

/** Options of one post. */
export interface PostOptions {
  /** Repeat: run again this many ms after each run finishes, until cancelled. */
  every?: number;
  /** Run on the event-loop thread (overrides the definition). */
  mainThread?: boolean;
  /** May run long: capped at `longRunningShare` of the threads so short jobs keep flowing. */
  longRunning?: boolean;
  /** Never share a worker task with other jobs (for jobs that might kill their thread). */
  isolated?: boolean;
  /**
   * When the thread running this job's batch dies after the job finished, its result is lost
   * with the thread; by default the job then runs again (at-least-once). `false`: fail it with
   * DIOCP_ERR_JOBS_THREAD_DIED instead (for jobs that must not run twice).
   */
  retry?: boolean;
}

/** Jobs whose average run time is unknown are batched at most this many per task. */
const UNKNOWN_BATCH = 64;
const MAX_BATCH = 1024;
/** A batch is sized to take about this long, so one thread does not hoard the queue. */
const BATCH_TARGET_MS = 2;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A job whose task keeps failing without it ever finishing is given up after this many tries. */
const MAX_REQUEUES = 5;

function workerFile(): string {
  const here = import.meta.url;
  // Worker threads load compiled JavaScript: from src/ (under a TS test runner) use dist/.
  return here.endsWith('.ts') ? new URL('../dist/worker.js', here).href : new URL('./worker.js', here).href;
}

function rebuild(e: SerializedError): Error {
  if (e.code?.startsWith('DIOCP_ERR_JOBS_')) {
    const err = new JobError(e.code as JobError['code'], e.message);
    if (e.stack) err.stack = e.stack;
    return err;
  }
  return new JobFailedError(e.name, e.message, e.stack, e.code);
}

/**
 * A QWorkers-style job pool on piscina. Jobs posted in the same tick are handed to the
 * threads as batches (one piscina task per batch), which is what makes tiny jobs cheap.
 */
export class JobPool {
  readonly options: ResolvedJobPoolOptions;
  private readonly piscina: Piscina<BatchTask, JobOutcome[]>;
  private readonly cancelFlags: Int32Array;
  private readonly stat = new StatsBook();
  private readonly queue = new Deque<Job>();
  private readonly longQueue = new Deque<Job>();
  private readonly mainQueue = new Deque<Job>();
  private readonly scheduledJobs = new Set<Job>();
  private readonly running = new Set<Job>();
  private readonly signals = new Map<string, Set<JobDefinition<any, any>>>();
  private readonly signalChains = new Map<string, Promise<unknown>>();
  private nextId = 1;
  private tasksInFlight = 0;
  private longInFlight = 0;
  private queuedCount = 0;
  private completed = 0;
  private flushPending = false;
  private paused = false;
  private state: 'open' | 'closing' | 'closed' | 'destroyed' = 'open';
  private idleWaiters: (() => void)[] = [];

  constructor(options: JobPoolOptions = {}) {
    this.options = resolveJobPoolOptions(options);
    const cancel = new SharedArrayBuffer(4 * CANCEL_SLOTS);
    this.cancelFlags = new Int32Array(cancel);
    const o = this.options;
    this.piscina = new Piscina<BatchTask, JobOutcome[]>({
      filename: workerFile(),
      minThreads: o.minThreads,
      maxThreads: o.maxThreads,
      idleTimeout: o.idleTimeoutMs,
      // The pool keeps its own queue and never gives piscina more tasks than threads.
      // Between tasks a thread runs its event loop, so async jobs' timers keep working.
      atomics: 'async',
      resourceLimits: o.resourceLimits,
      workerData: { cancel, entry: process.argv[1] ? pathToFileURL(process.argv[1]).href : null } satisfies WorkerData,
    });
    // A thread that dies between tasks must not take the process down.
    this.piscina.on('error', (err: unknown) => this.report(null, jobError('DIOCP_ERR_JOBS_THREAD_DIED', '(none)', describeError(err))));
  }

  // ---------------------------------------------------------------- posting

  /** Run `job` with `data` as soon as a thread is free (or repeatedly, with `every`). */
  post<In, Out>(job: JobDefinition<In, Out>, data: In, options: PostOptions = {}): JobHandle<Out> {
    checkOptions(options);
    const j = this.create(job, data, options, options.every !== undefined ? { kind: 'every', ms: this.checkMs('every', options.every, 1) } : null);
    this.enqueue(j);
    return j;
  }

  /** Run `job` after `ms` (and then every `options.every` ms, if given). */
  delay<In, Out>(job: JobDefinition<In, Out>, ms: number, data: In, options: Omit<PostOptions, never> = {}): JobHandle<Out> {
    checkOptions(options);
    this.checkMs('delay', ms, 0);
    const j = this.create(job, data, options, options.every !== undefined ? { kind: 'every', ms: this.checkMs('every', options.every, 1) } : null);
    this.schedule(j, Date.now() + ms);
    return j;
  }

  /** Run `job` at a time (a Date or epoch ms); past times run now. Repeats with `options.every`. */
  at<In, Out>(job: JobDefinition<In, Out>, when: Date | number, data: In, options: PostOptions = {}): JobHandle<Out> {
    checkOptions(options);
    const t = when instanceof Date ? when.getTime() : when;
    if (typeof t !== 'number' || !Number.isFinite(t)) throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `at: the time must be a valid Date or epoch milliseconds, got ${String(when)}`);
    const j = this.create(job, data, options, options.every !== undefined ? { kind: 'every', ms: this.checkMs('every', options.every, 1) } : null);
    this.schedule(j, t);
    return j;
  }

  /**
   * Run `job` on a cron plan (croner syntax: 5 fields, or 6 with seconds first), until
   * cancelled. `result` is the first run's outcome.
   */
  plan<In, Out>(job: JobDefinition<In, Out>, cron: string, data: In, options: Omit<PostOptions, 'every'> = {}): JobHandle<Out> {
    checkOptions(options);
    let c: Cron;
    try {
      if (typeof cron !== 'string') throw new TypeError('not a string');
      c = new Cron(cron, { paused: true });
    } catch (err) {
      throw jobError('DIOCP_ERR_JOBS_BAD_CRON', String(cron), (err as Error).message);
    }
    const first = c.nextRun();
    if (first === null) throw jobError('DIOCP_ERR_JOBS_BAD_CRON', cron, 'it never runs');
    const j = this.create(job, data, options, { kind: 'cron', next: () => c.nextRun() });
    this.schedule(j, first.getTime());
    return j;
  }

  /** Run a function on the event-loop thread (it may close over anything). */
  postMain<Out>(fn: (ctx: JobContext) => Out | Promise<Out>, options: { name?: string } = {}): JobHandle<Awaited<Out>> {
    if (typeof fn !== 'function') throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', 'postMain needs a function');
    const def = mainDefinition(options.name ?? (fn.name || 'main'), (_d: unknown, ctx: JobContext) => fn(ctx));
    return this.post(def as JobDefinition<unknown, Awaited<Out>>, undefined, { mainThread: true });
  }

  // ---------------------------------------------------------------- signals

  /** Run `job` with the signal's data each time signal `name` fires. Returns an unsubscribe function. */
  onSignal<In, Out>(name: string, job: JobDefinition<In, Out> | ((data: In, ctx: JobContext) => Out | Promise<Out>)): () => void {
    if (typeof name !== 'string' || name === '') throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', 'onSignal: the signal name must be a non-empty string');
    const def = typeof job === 'function' ? mainDefinition(`signal:${name}`, job) : job;
    if (!isJobDefinition(def)) throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', `onSignal("${name}"): not a job (use defineJob or pass a function)`);
    let set = this.signals.get(name);
    if (set === undefined) this.signals.set(name, (set = new Set()));
    set.add(def);
    return () => {
      set!.delete(def);
      // Only if the set is still the live one: an old unsubscribe must not drop new listeners.
      if (set!.size === 0 && this.signals.get(name) === set) this.signals.delete(name);
    };
  }

  /**
   * Fire signal `name`: every job waiting for it runs with `data`. Resolves with their results
   * (in registration order) when all finished; rejects DIOCP_ERR_JOBS_SIGNAL_TIMEOUT after
   * `timeoutMs` (the jobs still running are cancelled), or with the first job's error.
   */
  signal(name: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<unknown[]> {
    const defs = this.signals.get(name);
    if (defs === undefined || defs.size === 0) throw jobError('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL', String(name));
    const timeoutMs = options.timeoutMs === undefined ? undefined : this.checkMs('timeoutMs', options.timeoutMs, 1);
    const handles = [...defs].map((def) => {
      const j = this.create(def, data, {}, null);
      j.signalName = name;
      this.enqueue(j);
      return j;
    });
    const all = Promise.all(handles.map((h) => h.result));
    if (timeoutMs === undefined) return all;
    return withTimeout(all, timeoutMs, () => {
      const left = handles.filter((h) => !(h as Job).finished);
      for (const h of left) h.cancel();
      return jobError('DIOCP_ERR_JOBS_SIGNAL_TIMEOUT', name, timeoutMs, left.length);
    });
  }

  /**
   * Queue signal `name`: fired after every earlier postSignal of the same name has finished,
   * one at a time (QWorkers' PostSignal). The unknown-signal check happens now.
   */
  postSignal(name: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<unknown[]> {
    if (!this.signals.get(name)?.size) throw jobError('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL', String(name));
    const prev = this.signalChains.get(name) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(() => this.signal(name, data, options));
    this.signalChains.set(name, next);
    const tidy = () => {
      if (this.signalChains.get(name) === next) this.signalChains.delete(name);
    };
    next.then(tidy, tidy);
    return next;
  }

  // ---------------------------------------------------------------- groups and loops

  /** A group of jobs run together (QWorkers' TQJobGroup). */
  group(options: GroupOptions = {}): JobGroup {
    return new JobGroup(this, options);
  }

  /**
   * Run `job(i)` for every i in [start, stop) on the worker threads, in chunks. A body may
   * call `ctx.break()` to stop the loop early. Resolves with run counts and timing.
   */
  parallelFor(start: number, stop: number, job: JobDefinition<number, unknown>, options: ParallelForOptions = {}): Promise<ParallelForResult> {
    return runParallelFor(this, start, stop, job, options);
  }

  // ---------------------------------------------------------------- control

  /** Cancel one job (see JobHandle.cancel). */
  cancel(handle: JobHandle<unknown>): boolean {
    return handle.cancel();
  }

  /** Wait for a job's first result at most `timeoutMs`; the job is not cancelled on timeout. */
  wait<T>(handle: JobHandle<T>, timeoutMs: number): Promise<T> {
    this.checkMs('timeoutMs', timeoutMs, 0);
    return withTimeout(handle.result, timeoutMs, () => jobError('DIOCP_ERR_JOBS_WAIT_TIMEOUT', handle.id, timeoutMs));
  }


  /**
   * Cancel jobs (QWorkers' Clear). No argument: every job that has not started, scheduled
   * and repeating ones included (running ones finish). A handle: that job, like
   * `handle.cancel()` (a running one is told through its AbortSignal). `{ signal }`: the jobs
   * that signal posted and not yet started, and the signal's listeners. `{ group }`: the
   * group's jobs not yet started. Returns how many were cancelled.
   */
  clear(target?: JobHandle<unknown> | { signal: string } | { group: JobGroup }): number {
    if (target === undefined) {
      let n = 0;
      for (const q of [this.queue, this.longQueue, this.mainQueue]) {
        const jobs: Job[] = [];
        q.removeWhere((j) => (jobs.push(j), true));
        for (const j of jobs) if (this.cancelJob(j)) n++;
      }
      for (const j of [...this.scheduledJobs]) if (this.cancelJob(j)) n++;
      // Jobs handed to a thread in a batch but not started yet: still "not started".
      for (const j of [...this.running]) {
        if (j.batchStatus !== null && Atomics.load(j.batchStatus, j.batchIndex) === RunState.Queued && this.cancelJob(j)) n++;
      }
      return n;
    }
    if ('signal' in target && typeof target.signal === 'string') {
      const name = target.signal;
      this.signals.delete(name);
      let n = 0;
      for (const q of [this.queue, this.longQueue, this.mainQueue]) {
        const jobs: Job[] = [];
        q.removeWhere((j) => j.signalName === name && (jobs.push(j), true));
        for (const j of jobs) if (this.cancelJob(j)) n++;
      }
      return n;
    }
    if ('group' in target && target.group instanceof JobGroup) return target.group.cancelPending();
    return (target as JobHandle<unknown>).cancel() ? 1 : 0;
  }

  /** Stop starting jobs (running ones finish; scheduled ones queue up). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.scheduleFlush();
  }

  stats(): PoolStats {
    const threads = this.piscina.threads.length;
    const busy = Math.min(threads, this.tasksInFlight);
    return {
      jobs: this.stat.snapshot(),
      pool: {
        threads,
        busyThreads: busy,
        idleThreads: Math.max(0, threads - busy),
        queued: this.queuedCount,
        scheduled: this.scheduledJobs.size,
        running: this.running.size,
        completed: this.completed,
        paused: this.paused,
      },
    };
  }

  /**
   * Finish what is queued and running, cancel what is only scheduled (with
   * DIOCP_ERR_JOBS_CLOSED), then stop the threads. No threads or timers are left behind.
   */
  async close(): Promise<void> {
    if (this.state !== 'open') return this.state === 'closing' ? this.closed() : undefined;
    this.state = 'closing';
    for (const j of [...this.scheduledJobs]) this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_CLOSED', 'closing: this scheduled job will not run'));
    this.paused = false;
    this.scheduleFlush();
    await this.closed();
  }

  private async closed(): Promise<void> {
    await this.idle();
    if (this.state === 'closing') {
      this.state = 'closed';
      await this.piscina.close();
    }
  }

  /** Reject everything queued or scheduled, stop running jobs' threads, stop the pool. */
  async destroy(): Promise<void> {
    if (this.state === 'destroyed' || this.state === 'closed') return;
    this.state = 'destroyed';
    for (const q of [this.queue, this.longQueue, this.mainQueue]) {
      while (q.length) {
        const j = q.shift()!;
        if (j.state === 'queued') this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_DESTROYED', j.id, j.name));
      }
    }
    for (const j of [...this.scheduledJobs]) this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_DESTROYED', j.id, j.name));
    for (const j of [...this.running]) {
      j.controller?.abort(jobError('DIOCP_ERR_JOBS_DESTROYED', j.id, j.name));
      this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_DESTROYED', j.id, j.name));
    }
    await this.piscina.destroy();
    this.wakeIdle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- internals (also used by group.ts / parallel-for.ts)

  /** @internal */
  create<In, Out>(def: JobDefinition<In, Out>, data: In, options: PostOptions, repeat: Repeat | null): Job<Out> {
    if (this.state !== 'open') throw jobError('DIOCP_ERR_JOBS_CLOSED', this.state);
    if (!isJobDefinition(def)) {
      throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', `not a job: ${describe(def)} (declare jobs with defineJob and pass the definition)`);
    }
    if (options === null || typeof options !== 'object') throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', 'options must be an object');
    const mainThread = options.mainThread ?? def.options.mainThread ?? false;
    const longRunning = options.longRunning ?? def.options.longRunning ?? false;
    return new Job<Out>(
      this.nextId++,
      def as JobDefinition<any, Out>,
      data,
      mainThread,
      longRunning,
      options.isolated === true,
      repeat,
      options.retry !== false,
      (j, force) => this.cancelJob(j, force),
    );
  }

  /** @internal */
  newId(): number {
    return this.nextId++;
  }

  /** @internal Set the cancel/break flag of an id, seen by the worker threads. */
  raiseFlag(id: number): void {
    Atomics.store(this.cancelFlags, id % CANCEL_SLOTS, id | 0);
  }

  /** @internal */
  enqueue(j: Job): void {
    if (this.state === 'destroyed' || this.state === 'closed') {
      this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_CLOSED', this.state));
      return;
    }
    if (this.queuedCount >= this.options.maxQueue) {
      // Not queued: the caller gets the error at the call.
      throw jobError('DIOCP_ERR_JOBS_QUEUE_FULL', this.options.maxQueue);
    }
    j.state = 'queued';
    this.queuedCount++;
    (j.mainThread ? this.mainQueue : j.longRunning ? this.longQueue : this.queue).push(j);
    this.scheduleFlush();
  }

  private schedule(j: Job, at: number): void {
    j.state = 'scheduled';
    j.nextRunAt = new Date(at);
    this.scheduledJobs.add(j);
    const arm = () => {
      const wait = at - Date.now();
      if (wait > MAX_TIMER_MS) {
        j.timer = setTimeout(arm, MAX_TIMER_MS);
        return;
      }
      j.timer = setTimeout(() => {
        j.timer = null;
        this.scheduledJobs.delete(j);
        j.nextRunAt = null;
        try {
          this.enqueue(j);
        } catch (err) {
          this.finishRun(j, err as Error, undefined);
        }
      }, Math.max(0, wait));
    };
    arm();
  }

  private scheduleFlush(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    // A microtask: a lone job leaves at once, jobs posted in the same tick leave together.
    queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    this.flushPending = false;
    if (this.paused || this.state === 'destroyed') return;
    while (this.mainQueue.length) {
      const j = this.mainQueue.shift()!;
      if (j.state !== 'queued') continue; // cancelled while queued
      this.queuedCount--;
      this.runMain(j);
    }
    // One task per thread: jobs wait in this pool's queue, where they batch best and are cheap
    // to cancel. (Queueing more tasks in piscina was measured: no gain, and unfair ordering.)
    const cap = this.options.maxThreads;
    const longCap = Math.max(1, Math.floor(cap * this.options.longRunningShare));
    while (this.tasksInFlight < cap) {
      if (this.longQueue.length && this.longInFlight < longCap) {
        const j = this.longQueue.shift()!;
        if (j.state !== 'queued') continue;
        this.queuedCount--;
        this.longInFlight++;
        this.dispatch([j], true);
        continue;
      }
      if (this.queue.length === 0) break;
      const batch = this.takeBatch(cap - this.tasksInFlight);
      if (batch.length) this.dispatch(batch, false);
    }
    if (this.isIdle()) this.wakeIdle();
  };

  /** Take the next batch: about BATCH_TARGET_MS of work, an equal share of the queue per free thread. */
  private takeBatch(freeThreads: number): Job[] {
    const share = Math.ceil(this.queue.length / freeThreads);
    const batch: Job[] = [];
    let estimate = 0;
    while (this.queue.length && batch.length < MAX_BATCH) {
      const j = this.queue.peek()!;
      if (j.state !== 'queued') {
        this.queue.shift(); // cancelled while queued
        continue;
      }
      if (j.isolated && batch.length > 0) break;
      const avg = this.stat.average(j.name);
      const limit = avg === undefined ? Math.min(share, UNKNOWN_BATCH) : share;
      if (batch.length >= limit) break;
      if (batch.length > 0 && avg !== undefined && estimate + avg > BATCH_TARGET_MS) break;
      this.queue.shift();
      this.queuedCount--;
      batch.push(j);
      estimate += avg ?? 0;
      if (j.isolated) break;
    }
    return batch;
  }

  private dispatch(batch: Job[], long: boolean): void {
    this.tasksInFlight++;
    const status = new SharedArrayBuffer(4 * batch.length);
    const abort = new AbortController();
    const statusView = new Int32Array(status);
    const specs: JobSpec[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const j = batch[i]!;
      j.state = 'running';
      j.abortBatch = abort;
      j.batchStatus = statusView;
      j.batchIndex = i;
      this.running.add(j);
      this.hook('beforeExecute', j);
      specs[i] = { id: j.id, module: j.def.module, name: j.def.name, data: j.data };
      if (j.range) specs[i]!.range = j.range;
    }
    this.piscina.run({ status, jobs: specs }, { signal: abort.signal }).then(
      (outcomes) => this.onBatch(batch, outcomes, long),
      (err: Error) => this.onBatchFailed(batch, new Int32Array(status), err, long),
    );
  }

  private onBatch(batch: Job[], outcomes: JobOutcome[], long: boolean): void {
    this.tasksInFlight--;
    if (long) this.longInFlight--;
    for (let i = 0; i < batch.length; i++) {
      const j = batch[i]!;
      const o = outcomes[i]!;
      this.running.delete(j);
      if (j.state !== 'running' || 's' in o) continue; // cancelled meanwhile
      this.completed++;
      if (o.ok) {
        this.stat.record(j.name, o.ms, true);
        this.finishRun(j, null, o.value);
      } else {
        this.stat.record(j.name, o.ms, false);
        this.finishRun(j, rebuild(o.error), undefined);
      }
    }
    this.scheduleFlush();
  }

  private onBatchFailed(batch: Job[], status: Int32Array, err: Error, long: boolean): void {
    this.tasksInFlight--;
    if (long) this.longInFlight--;
    const requeue: Job[] = [];
    const failed: [Job, Error][] = [];
    // A DataCloneError before any job started: the batch never left (data that cannot cross).
    let anyStarted = false;
    for (let i = 0; i < batch.length; i++) if (Atomics.load(status, i) !== RunState.Queued) anyStarted = true;
    const clone = !anyStarted && (err as { name?: string } | null)?.name === 'DataCloneError';
    for (let i = 0; i < batch.length; i++) {
      const j = batch[i]!;
      this.running.delete(j);
      if (j.state !== 'running') continue;
      if (this.state === 'destroyed' || this.state === 'closed') {
        // piscina refuses tasks once closing: re-posting would loop.
        this.finishCancelled(j, this.state === 'destroyed' ? jobError('DIOCP_ERR_JOBS_DESTROYED', j.id, j.name) : jobError('DIOCP_ERR_JOBS_CLOSED', 'closed'));
        continue;
      }
      if (++j.requeues > MAX_REQUEUES) {
        failed.push([j, jobError('DIOCP_ERR_JOBS_THREAD_DIED', j.name, `${describeError(err)} (its task failed ${j.requeues} times)`)]);
        continue;
      }
      if (clone) {
        // The batch never left: find the job whose data cannot cross to a thread.
        try {
          structuredClone(j.data);
          // Its data is fine; a batch that keeps failing to leave must not loop forever.
          if (++j.retries > 2) throw new Error(`${describeError(err)} (the batch failed to leave ${j.retries} times)`);
          requeue.push(j);
        } catch (e) {
          failed.push([j, jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `job "${j.name}": its data cannot be sent to a worker thread: ${(e as Error).message}`)]);
        }
        continue;
      }
      const st = Atomics.load(status, i);
      if (st === RunState.Started || (st === RunState.Finished && (j.retries >= 1 || !j.retry))) {
        failed.push([j, jobError('DIOCP_ERR_JOBS_THREAD_DIED', j.name, describeError(err))]);
      } else {
        // Never started: it runs on another thread. Finished but its result died with the
        // thread: it runs again, once (documented: at-least-once after a thread crash).
        if (st === RunState.Finished) j.retries++;
        requeue.push(j);
      }
    }
    for (let i = requeue.length - 1; i >= 0; i--) {
      const j = requeue[i]!;
      j.state = 'queued';
      this.queuedCount++;
      (j.longRunning ? this.longQueue : this.queue).unshift(j);
    }
    // Settle the failures only now: settling can wake idle() waiters, which must see the
    // re-queued jobs as queued.
    for (const [j, e] of failed) {
      this.completed++;
      this.stat.record(j.name, 0, false);
      this.finishRun(j, e, undefined);
    }
    this.scheduleFlush();
  }

  private runMain(j: Job): void {
    j.state = 'running';
    this.running.add(j);
    this.hook('beforeExecute', j);
    const controller = new AbortController();
    j.controller = controller;
    let cancelled = false;
    controller.signal.addEventListener('abort', () => (cancelled = true), { once: true });
    const ctx: JobContext = { id: j.id, name: j.name, signal: controller.signal, isCancelled: () => cancelled, break: () => {} };
    setImmediate(() => {
      if (j.state !== 'running') return;
      const start = performance.now();
      const done = (error: Error | null, value: unknown) => {
        this.running.delete(j);
        j.controller = null;
        if (j.state !== 'running') return this.scheduleFlush();
        this.completed++;
        this.stat.record(j.name, performance.now() - start, error === null);
        this.finishRun(j, error, value);
        this.scheduleFlush();
      };
      try {
        const r = j.def.fn(j.data, ctx);
        if (r instanceof Promise) r.then((v) => done(null, v), (e: unknown) => done(toError(e), undefined));
        else done(null, r);
      } catch (e) {
        done(toError(e), undefined);
      }
    });
  }

  /** After each run: settle the first-run promise, hooks, listeners, and the next repetition. */
  private finishRun(j: Job, error: Error | null, value: unknown): void {
    j.runs++;
    if (error === null) {
      j.lastResult = value;
      this.hook('afterExecute', j, value);
    } else {
      this.report(j, error);
    }
    if (!j.firstSettled) {
      j.firstSettled = true;
      if (error === null) j.resolveFirst(value);
      else j.rejectFirst(error);
    }
    j.listener?.(j, error, value);
    if (j.repeat !== null && this.state === 'open' && j.state === 'running') {
      const next = j.repeat.kind === 'every' ? Date.now() + j.repeat.ms : j.repeat.next()?.getTime();
      if (next !== undefined) {
        this.schedule(j, next);
        return;
      }
    }
    if (j.state === 'running' || j.state === 'queued' || j.state === 'scheduled') j.state = error === null ? 'done' : 'failed';
    if (this.isIdle()) this.wakeIdle();
  }

  private cancelJob(j: Job, force = false): boolean {
    if (j.finished) return false;
    this.hook('beforeCancel', j);
    if (j.state === 'running') {
      if (j.controller) j.controller.abort(jobError('DIOCP_ERR_JOBS_CANCELLED', j.id, j.name));
      else {
        this.raiseFlag(j.id);
        // Ending the task ends its thread; piscina starts a fresh one.
        if (force) j.abortBatch?.abort();
      }
    } else if (j.state === 'queued') {
      // Dropped from its queue when the batcher reaches it; it never runs.
      this.raiseFlag(j.id);
    }
    this.stat.cancelled(j.name);
    this.finishCancelled(j, jobError('DIOCP_ERR_JOBS_CANCELLED', j.id, j.name));
    return true;
  }

  private finishCancelled(j: Job, err: JobError): void {
    if (j.state === 'queued') this.queuedCount--;
    if (j.timer) clearTimeout(j.timer);
    j.timer = null;
    j.nextRunAt = null;
    this.scheduledJobs.delete(j);
    this.running.delete(j);
    j.state = 'cancelled';
    if (!j.firstSettled) {
      j.firstSettled = true;
      j.rejectFirst(err);
    }
    j.listener?.(j, err, undefined);
    if (this.isIdle()) this.wakeIdle();
  }

  private isIdle(): boolean {
    // queuedCount counts live jobs only: cancelled ones left in a queue are skipped later.
    return this.running.size === 0 && this.tasksInFlight === 0 && this.queuedCount === 0;
  }

  private wakeIdle(): void {
    if (!this.isIdle() && this.state !== 'destroyed') return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private hook(name: 'beforeExecute' | 'beforeCancel', j: Job): void;
  private hook(name: 'afterExecute', j: Job, value: unknown): void;
  private hook(name: 'beforeExecute' | 'beforeCancel' | 'afterExecute', j: Job, value?: unknown): void {
    const fn = this.options[name];
    if (fn === undefined) return;
    try {
      (fn as (job: Job, v?: unknown) => void)(j, value);
    } catch {
      // A throwing hook must not break the pool.
    }
  }

  private report(j: Job | null, error: Error): void {
    const fn = this.options.onError;
    if (fn === undefined) return;
    try {
      fn((j ?? ({ id: 0, name: '(thread)' } as unknown)) as JobHandle<unknown>, error);
    } catch {
      // ignore: see hook()
    }
  }

  private checkMs(name: string, v: unknown, min: number): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `${name} must be a finite number of ms >= ${min}, got ${String(v)}`);
    }
    return v;
  }
}

/** `p`, or a rejection with `onTimeout()`'s error after `ms`; the timer never outlives `p`. */
function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function checkOptions(options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function describe(v: unknown): string {
  if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
  if (v === null || v === undefined) return String(v);
  return typeof v;
}

/** A job definition for a main-thread function (postMain, onSignal with a function). */
function mainDefinition<In, Out>(name: string, fn: (data: In, ctx: JobContext) => Out | Promise<Out>): JobDefinition<In, Out> {
  return Object.freeze({ [JOB]: true as const, module: 'main:', name, fn, options: Object.freeze({ mainThread: true }) }) as JobDefinition<In, Out>;
}

/** Create a job pool. Close it (`close` or `destroy`) to let the process exit. */
export function createJobPool(options: JobPoolOptions = {}): JobPool {
  return new JobPool(options);
}
