import type { JobDefinition } from './define-job.js';
import { jobError } from './errors.js';
import type { Job, JobHandle } from './handle.js';
import type { JobPool } from './pool.js';

export interface GroupOptions {
  /** Run the jobs one after another in the order they were added (QWorkers' byOrder). */
  sequential?: boolean;
  /** Most jobs of the group running at once (ignored when sequential). Default: no limit. */
  maxConcurrency?: number;
}

export type Settled<T = unknown> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: Error };

interface Entry {
  def: JobDefinition<any, any>;
  data: unknown;
  job: Job | null;
  settled: Settled | null;
}

/**
 * Jobs run as a unit (QWorkers' TQJobGroup): `add` them, `run`, then await `done`, which
 * resolves with every job's outcome in the order they were added.
 */
export class JobGroup {
  readonly done: Promise<Settled[]>;
  private readonly entries: Entry[] = [];
  private readonly limit: number;
  private next = 0;
  private running = 0;
  private settledCount = 0;
  private started = false;
  private over = false;
  private timer: NodeJS.Timeout | null = null;
  private resolveDone!: (r: Settled[]) => void;
  private rejectDone!: (e: Error) => void;
  private readonly after: ((results: Settled[]) => void)[] = [];
  private waitersForRunning: (() => void)[] = [];

  constructor(
    private readonly pool: JobPool,
    options: GroupOptions,
  ) {
    const max = options.maxConcurrency ?? Infinity;
    if (max !== Infinity && (!Number.isInteger(max) || max < 1)) {
      throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `group: maxConcurrency must be a whole number >= 1, got ${String(max)}`);
    }
    this.limit = options.sequential ? 1 : max;
    this.done = new Promise<Settled[]>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {});
  }

  /** Number of jobs added. */
  get size(): number {
    return this.entries.length;
  }

  /** Add a job; before or while the group runs. */
  add<In, Out>(job: JobDefinition<In, Out>, data: In): this {
    if (this.over) throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', 'group: cannot add to a group that is done or cancelled');
    // Validate now (unknown job → error at the call), create the job when it starts.
    this.pool.create(job, data, {}, null);
    this.entries.push({ def: job, data, job: null, settled: null });
    if (this.started) this.pump();
    return this;
  }

  /** Start the group. With `timeoutMs`, `done` rejects DIOCP_ERR_JOBS_GROUP_TIMEOUT and the rest is cancelled. */
  run(options: { timeoutMs?: number } = {}): Promise<Settled[]> {
    if (this.started) return this.done;
    this.started = true;
    const ms = options.timeoutMs;
    if (ms !== undefined) {
      if (typeof ms !== 'number' || !(ms > 0) || !Number.isFinite(ms)) {
        throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `group.run: timeoutMs must be a positive number, got ${String(ms)}`);
      }
      this.timer = setTimeout(() => {
        const left = this.entries.length - this.settledCount;
        this.over = true;
        // Reject first: cancelling settles the jobs, which would otherwise resolve `done`.
        this.rejectDone(jobError('DIOCP_ERR_JOBS_GROUP_TIMEOUT', ms, left));
        this.cancelAll();
      }, ms);
    }
    this.pump();
    this.checkDone();
    return this.done;
  }

  /** Called with the results once every job finished (also after cancel). */
  afterDone(fn: (results: Settled[]) => void): this {
    this.after.push(fn);
    return this;
  }

  /**
   * Cancel the group: jobs not started never run. Running jobs are cancelled too, unless
   * `waitRunning`, in which case this resolves once they have finished.
   */
  async cancel(options: { waitRunning?: boolean } = {}): Promise<void> {
    this.over = true;
    // Cancelled before run(): nothing will run, so `done` settles now.
    this.started = true;
    this.cancelPending();
    if (!options.waitRunning) {
      for (const e of this.entries) e.job?.cancel();
      return;
    }
    if (this.running > 0) await new Promise<void>((r) => this.waitersForRunning.push(r));
  }

  /** @internal Cancel entries that have not started; returns how many. */
  cancelPending(): number {
    let n = 0;
    for (let i = this.next; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.settled) continue;
      e.settled = { status: 'rejected', reason: jobError('DIOCP_ERR_JOBS_CANCELLED', 0, e.def.name) };
      this.settledCount++;
      n++;
    }
    this.next = this.entries.length;
    this.checkDone();
    return n;
  }

  private cancelAll(): void {
    this.cancelPending();
    for (const e of this.entries) e.job?.cancel();
  }

  private pump(): void {
    while (!this.over && this.running < this.limit && this.next < this.entries.length) {
      const e = this.entries[this.next++]!;
      const job = this.pool.create(e.def, e.data, {}, null);
      e.job = job;
      this.running++;
      job.listener = (_j, error, value) => this.onSettled(e, error, value);
      try {
        this.pool.enqueue(job);
      } catch (err) {
        this.onSettled(e, err as Error, undefined);
      }
    }
  }

  private onSettled(e: Entry, error: Error | null, value: unknown): void {
    if (e.settled) return;
    e.settled = error === null ? { status: 'fulfilled', value } : { status: 'rejected', reason: error };
    this.settledCount++;
    this.running--;
    if (this.running === 0) {
      const w = this.waitersForRunning;
      this.waitersForRunning = [];
      for (const f of w) f();
    }
    this.pump();
    this.checkDone();
  }

  private checkDone(): void {
    if (!this.started || this.settledCount < this.entries.length || this.running > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.over = true;
    const results = this.entries.map((e) => e.settled!);
    this.resolveDone(results);
    for (const f of this.after.splice(0)) {
      try {
        f(results);
      } catch {
        // an afterDone callback must not break the others
      }
    }
  }

  /** Handles of the jobs started so far (for progress displays). */
  get jobs(): (JobHandle<unknown> | null)[] {
    return this.entries.map((e) => e.job);
  }
}
