import os from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { jobError } from './errors.js';
import type { JobHandle } from './handle.js';

/** Options of `createJobPool`. Every key is optional; `jobPoolDefaults` holds the rest. */
export interface JobPoolOptions {
  /** Threads kept alive even when idle. Default: maxThreads (no thread churn). */
  minThreads?: number;
  /** Most threads at once. Default: the machine's available parallelism. */
  maxThreads?: number;
  /** A thread above minThreads idle this long is retired (ms). Default 60000. */
  idleTimeoutMs?: number;
  /** Largest share of the threads that longRunning jobs may hold (0–1]. Default 0.5, at least one thread. */
  longRunningShare?: number;
  /** Jobs that may wait at once; past it `post` throws DIOCP_ERR_JOBS_QUEUE_FULL. Default 1,000,000. */
  maxQueue?: number;
  /** Memory limits per thread (worker_threads resourceLimits); a job over them kills its thread. */
  resourceLimits?: ResourceLimits;
  /** A job failed (threw, was cut off by its thread dying). The pool goes on either way. */
  onError?: (job: JobHandle<unknown>, error: Error) => void;
  /**
   * A job is about to run: it is handed to a thread (with the rest of its batch, so a job
   * later in the batch starts a little after this call) or to the event loop.
   */
  beforeExecute?: (job: JobHandle<unknown>) => void;
  /** A job finished successfully. */
  afterExecute?: (job: JobHandle<unknown>, result: unknown) => void;
  /** A job is about to be cancelled. */
  beforeCancel?: (job: JobHandle<unknown>) => void;
}

export type ResolvedJobPoolOptions = Required<Omit<JobPoolOptions, 'resourceLimits' | 'onError' | 'beforeExecute' | 'afterExecute' | 'beforeCancel'>> &
  Pick<JobPoolOptions, 'resourceLimits' | 'onError' | 'beforeExecute' | 'afterExecute' | 'beforeCancel'>;

export const jobPoolDefaults = {
  maxThreads: Math.max(1, os.availableParallelism()),
  idleTimeoutMs: 60_000,
  longRunningShare: 0.5,
  maxQueue: 1_000_000,
} as const;

const HOOKS = ['onError', 'beforeExecute', 'afterExecute', 'beforeCancel'] as const;
const KNOWN = new Set(['minThreads', 'maxThreads', 'idleTimeoutMs', 'longRunningShare', 'maxQueue', 'resourceLimits', ...HOOKS]);

/** Check options and fill defaults; errors name the option. */
export function resolveJobPoolOptions(options: JobPoolOptions = {}): ResolvedJobPoolOptions {
  if (options === null || typeof options !== 'object') throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', 'options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', key, `is not an option (known: ${[...KNOWN].join(', ')})`);
  }
  const int = (name: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', name, `must be a whole number in ${min}..${max}, got ${String(v)}`);
    }
    return v;
  };
  const maxThreads = int('maxThreads', options.maxThreads ?? jobPoolDefaults.maxThreads, 1, 1024);
  const minThreads = int('minThreads', options.minThreads ?? maxThreads, 0, 1024);
  if (minThreads > maxThreads) throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', 'minThreads', `(${minThreads}) must not exceed maxThreads (${maxThreads})`);
  const idleTimeoutMs = int('idleTimeoutMs', options.idleTimeoutMs ?? jobPoolDefaults.idleTimeoutMs, 0, 2 ** 31 - 1);
  const share = options.longRunningShare ?? jobPoolDefaults.longRunningShare;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) {
    throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', 'longRunningShare', `must be a number in (0, 1], got ${String(share)}`);
  }
  const maxQueue = int('maxQueue', options.maxQueue ?? jobPoolDefaults.maxQueue, 1, 100_000_000);
  for (const hook of HOOKS) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') {
      throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', hook, 'must be a function');
    }
  }
  if (options.resourceLimits !== undefined && (typeof options.resourceLimits !== 'object' || options.resourceLimits === null)) {
    throw jobError('DIOCP_ERR_JOBS_BAD_OPTION', 'resourceLimits', 'must be an object (worker_threads ResourceLimits)');
  }
  return { ...options, minThreads, maxThreads, idleTimeoutMs, longRunningShare: share, maxQueue };
}
