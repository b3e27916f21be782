/**
 * The error registry of @diocp/jobs: stable codes `DIOCP_ERR_JOBS_<WHAT>`, one message
 * template each. docs/errors.md documents every code (a test checks).
 */
type Template = (...args: never[]) => string;

export const jobErrorDefs = {
  DIOCP_ERR_JOBS_BAD_OPTION: (option: string, why: string) => `option "${option}" ${why}`,
  DIOCP_ERR_JOBS_BAD_ARGUMENT: (what: string) => what,
  DIOCP_ERR_JOBS_UNKNOWN_JOB: (what: string) => what,
  DIOCP_ERR_JOBS_BAD_CRON: (expr: string, why: string) => `bad cron expression "${expr}": ${why}`,
  DIOCP_ERR_JOBS_UNKNOWN_SIGNAL: (name: string) => `no job waits for signal "${name}" (register one with onSignal first)`,
  DIOCP_ERR_JOBS_SIGNAL_TIMEOUT: (name: string, ms: number, left: number) =>
    `signal "${name}": ${left} job(s) still running after ${ms} ms`,
  DIOCP_ERR_JOBS_GROUP_TIMEOUT: (ms: number, left: number) => `job group: ${left} job(s) not finished after ${ms} ms`,
  DIOCP_ERR_JOBS_WAIT_TIMEOUT: (id: number, ms: number) => `job ${id} did not finish within ${ms} ms`,
  DIOCP_ERR_JOBS_CANCELLED: (id: number, name: string) => `job ${id} (${name}) was cancelled`,
  DIOCP_ERR_JOBS_THREAD_DIED: (name: string, why: string) => `the worker thread running job "${name}" died: ${why}`,
  DIOCP_ERR_JOBS_PROCESS_EXIT: (name: string, code: number) =>
    `job "${name}" called process.exit(${code}); a job must not end its thread (the thread keeps serving)`,
  DIOCP_ERR_JOBS_BAD_RESULT: (name: string, why: string) => `job "${name}" returned a value that cannot be sent back to the main thread: ${why}`,
  DIOCP_ERR_JOBS_QUEUE_FULL: (limit: number) => `${limit} jobs are already queued (maxQueue); try again later`,
  DIOCP_ERR_JOBS_CLOSED: (how: string) => `the job pool is ${how}`,
  DIOCP_ERR_JOBS_DESTROYED: (id: number, name: string) => `job ${id} (${name}) was dropped: the pool was destroyed`,
} satisfies Record<string, Template>;

export type JobErrorCode = keyof typeof jobErrorDefs;

export class JobError extends Error {
  readonly code: JobErrorCode;
  constructor(code: JobErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JobError';
    this.code = code;
  }
}

export function jobError<C extends JobErrorCode>(code: C, ...args: Parameters<(typeof jobErrorDefs)[C]>): JobError {
  return new JobError(code, (jobErrorDefs[code] as (...a: unknown[]) => string)(...args));
}

/** An error a job threw inside a worker, rebuilt on the main thread with its message and stack. */
export class JobFailedError extends Error {
  /** The `code` property of the original error, if it had one. */
  readonly code: string | undefined;
  constructor(name: string, message: string, stack: string | undefined, code: string | undefined) {
    super(message);
    this.name = name;
    this.code = code;
    if (stack) this.stack = stack;
  }
}
