import { jobError } from './errors.js';

/** Marks job definitions; a global symbol so copies of this package loaded twice still agree. */
export const JOB = Symbol.for('diocp.jobs.job');

/** What a running job can see. */
export interface JobContext {
  /** Job id (unique in its pool). */
  readonly id: number;
  /** The job's name (`defineJob`'s second argument, or `main` for postMain). */
  readonly name: string;
  /** Aborted when the job is cancelled while it runs (checked between awaits). */
  readonly signal: AbortSignal;
  /** True once the job was cancelled; cheap enough to call in a tight synchronous loop. */
  isCancelled(): boolean;
  /** In a `parallelFor` body: stop the loop (iterations not yet started do not run). */
  break(): void;
}

export interface JobDefinitionOptions {
  /** Run on the event-loop thread instead of a worker thread (may then close over state). */
  mainThread?: boolean;
  /** A job that may run for long: it never takes more than `longRunningShare` of the threads. */
  longRunning?: boolean;
}

export type JobFunction<In, Out> = (data: In, ctx: JobContext) => Out | Promise<Out>;

/**
 * A job that can be posted: where its code lives (module URL + name) so a worker thread can
 * load it, and the function itself for the main thread. Create it with `defineJob`.
 */
export interface JobDefinition<In = unknown, Out = unknown> {
  readonly [JOB]: true;
  readonly module: string;
  readonly name: string;
  readonly fn: JobFunction<In, Out>;
  readonly options: Readonly<JobDefinitionOptions>;
}

const NAME = /^[A-Za-z_$][\w$.-]*$/;

/**
 * Declare a job in a module that both the main thread and the worker threads import. Export
 * the result: workers find the job by its module URL and name.
 *
 * ```ts
 * // jobs.ts
 * export const add = defineJob(import.meta.url, 'add', (d: { a: number; b: number }) => d.a + d.b);
 * // main
 * const sum: number = await pool.post(add, { a: 1, b: 2 }).result;
 * ```
 */
export function defineJob<In, Out>(
  moduleUrl: string,
  name: string,
  fn: JobFunction<In, Out>,
  options: JobDefinitionOptions = {},
): JobDefinition<In, Awaited<Out>> {
  if (typeof moduleUrl !== 'string' || !moduleUrl.startsWith('file:')) {
    throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `defineJob: the first argument must be import.meta.url (a file: URL), got ${String(moduleUrl)}`);
  }
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `defineJob: job name must be an identifier-like string, got ${JSON.stringify(name)}`);
  }
  if (typeof fn !== 'function') {
    throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `defineJob("${name}"): the job must be a function`);
  }
  return Object.freeze({ [JOB]: true as const, module: moduleUrl, name, fn: fn as JobFunction<In, Awaited<Out>>, options: Object.freeze({ ...options }) });
}

export function isJobDefinition(value: unknown): value is JobDefinition {
  return typeof value === 'object' && value !== null && (value as { [JOB]?: unknown })[JOB] === true;
}
