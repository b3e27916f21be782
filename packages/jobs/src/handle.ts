import type { JobDefinition } from './define-job.js';

export type JobState = 'scheduled' | 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** What `post`, `delay`, `at`, `plan` and `postMain` return. */
export interface JobHandle<T> {
  readonly id: number;
  readonly name: string;
  readonly state: JobState;
  /**
   * The outcome of the job's first run. A job that throws rejects it with its error (message
   * and stack kept); a cancelled job rejects it with DIOCP_ERR_JOBS_CANCELLED. Never causes an
   * unhandled rejection when nobody awaits it.
   */
  readonly result: Promise<T>;
  /** Finished runs, successful or not (a repeating job runs many times). */
  readonly runs: number;
  /** Result of the latest successful run. */
  readonly lastResult: T | undefined;
  /** When the next run is due, for scheduled and repeating jobs. */
  readonly nextRunAt: Date | null;
  /**
   * Cancel: a job not started never runs; a running one is told through its AbortSignal.
   * `force` also ends the worker thread running it (for a job stuck in an endless loop); the
   * other jobs that thread held are re-posted (see `retry`).
   */
  cancel(options?: { force?: boolean }): boolean;
}

/** How a job repeats: fixed delay after each run, or a cron plan. */
export type Repeat = { kind: 'every'; ms: number } | { kind: 'cron'; next: () => Date | null };

/** Internal record behind a JobHandle. */
export class Job<T = unknown> implements JobHandle<T> {
  state: JobState = 'queued';
  runs = 0;
  lastResult: T | undefined = undefined;
  nextRunAt: Date | null = null;
  readonly result: Promise<T>;
  resolveFirst!: (value: any) => void;
  rejectFirst!: (err: Error) => void;
  firstSettled = false;
  timer: NodeJS.Timeout | null = null;
  controller: AbortController | null = null;
  /** Runs of this job whose thread died after it finished, forcing a re-run. */
  retries = 0;
  /** Times this job's task failed before it could finish (thread deaths, refused batches). */
  requeues = 0;
  /** The signal that posted this job, if any (clear({ signal }) cancels only those). */
  signalName: string | null = null;
  /** Where the worker reports this job's progress inside its batch. */
  batchStatus: Int32Array | null = null;
  batchIndex = 0;
  /** Ends the piscina task (and its thread) running this job's batch. */
  abortBatch: AbortController | null = null;
  /** parallelFor chunk. */
  range: { from: number; to: number; breakId: number } | null = null;
  /** Called after every run (groups, signals, parallelFor listen here). */
  listener: ((job: Job<any>, error: Error | null, value: unknown) => void) | null = null;

  constructor(
    readonly id: number,
    readonly def: JobDefinition<any, T>,
    readonly data: unknown,
    readonly mainThread: boolean,
    readonly longRunning: boolean,
    readonly isolated: boolean,
    readonly repeat: Repeat | null,
    /** false: never run twice, even when a thread died after it finished (see onBatchFailed). */
    readonly retry: boolean,
    private readonly canceller: (job: Job<any>, force: boolean) => boolean,
  ) {
    this.result = new Promise<T>((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    // Rejections are reported through onError too; nobody has to await a handle.
    this.result.catch(() => {});
  }

  get name(): string {
    return this.def.name;
  }

  cancel(options: { force?: boolean } = {}): boolean {
    return this.canceller(this, options.force === true);
  }

  get finished(): boolean {
    return this.state === 'done' || this.state === 'failed' || this.state === 'cancelled';
  }
}
