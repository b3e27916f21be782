import { isJobDefinition, type JobContext, type JobDefinition } from './define-job.js';
import { jobError } from './errors.js';
import type { Job } from './handle.js';
import type { JobPool } from './pool.js';

export interface ParallelForOptions {
  /** Iterations per task. Default: the range split into about four chunks per thread. */
  chunk?: number;
}

export interface ParallelForResult {
  /** Iterations that ran (QWorkers' Runs). */
  runs: number;
  /** True when a body called ctx.break(). */
  broken: boolean;
  /** Sum of the chunks' run times, ms (QWorkers' TotalTime). */
  totalMs: number;
  /** totalMs / runs (QWorkers' AvgTime). */
  avgMs: number;
  /** Wall time from call to result, ms. */
  elapsedMs: number;
}

/** Validates at the call (coded errors are thrown, not returned as a rejection), then runs. */
export function runParallelFor(
  pool: JobPool,
  start: number,
  stop: number,
  job: JobDefinition<number, unknown>,
  options: ParallelForOptions,
): Promise<ParallelForResult> {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(stop) || stop < start) {
    throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `parallelFor: start and stop must be integers with start <= stop, got ${start}, ${stop}`);
  }
  if (!isJobDefinition(job)) throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', 'parallelFor: the body must be a job made with defineJob');
  const count = stop - start;
  const threads = pool.options.maxThreads;
  const chunk = options.chunk ?? Math.max(1, Math.ceil(count / (threads * 4)));
  if (!Number.isInteger(chunk) || chunk < 1) throw jobError('DIOCP_ERR_JOBS_BAD_ARGUMENT', `parallelFor: chunk must be a whole number >= 1, got ${String(options.chunk)}`);
  const began = performance.now();
  if (count === 0) return Promise.resolve({ runs: 0, broken: false, totalMs: 0, avgMs: 0, elapsedMs: 0 });
  if (job.options.mainThread) return mainThreadFor(start, stop, job, chunk, began);

  const breakId = pool.newId();
  const jobs: Job[] = [];
  for (let from = start; from < stop; from += chunk) {
    const j = pool.create(job as JobDefinition<unknown, unknown>, undefined, { isolated: false }, null);
    j.range = { from, to: Math.min(stop, from + chunk), breakId };
    jobs.push(j);
  }
  return new Promise<ParallelForResult>((resolve, reject) => {
    let runs = 0;
    let totalMs = 0;
    let broken = false;
    let left = jobs.length;
    let failed = false;
    const stopRest = () => {
      pool.raiseFlag(breakId);
      for (const j of jobs) if (j.state === 'queued') j.cancel();
    };
    for (const j of jobs) {
      j.listener = (_job, error, value) => {
        left--;
        if (error === null) {
          const v = value as { runs: number; broke: boolean; ms: number };
          runs += v.runs;
          totalMs += v.ms;
          if (v.broke && !broken) {
            broken = true;
            stopRest();
          }
        } else if (error.name !== 'JobError' || (error as { code?: string }).code !== 'DIOCP_ERR_JOBS_CANCELLED') {
          if (!failed) {
            failed = true;
            stopRest();
            reject(error);
          }
        } else {
          broken ||= true; // cancelled chunks only come from a break or a failure
        }
        if (left === 0 && !failed) resolve({ runs, broken, totalMs, avgMs: runs ? totalMs / runs : 0, elapsedMs: performance.now() - began });
      };
    }
    for (const j of jobs) pool.enqueue(j);
  });
}

async function mainThreadFor(start: number, stop: number, job: JobDefinition<number, unknown>, chunk: number, began: number): Promise<ParallelForResult> {
  let broken = false;
  let runs = 0;
  const controller = new AbortController();
  const ctx: JobContext = { id: 0, name: job.name, signal: controller.signal, isCancelled: () => false, break: () => (broken = true) };
  const t0 = performance.now();
  for (let from = start; from < stop && !broken; from += chunk) {
    const to = Math.min(stop, from + chunk);
    for (let i = from; i < to && !broken; i++) {
      const r = job.fn(i, ctx);
      if (r instanceof Promise) await r;
      runs++;
    }
    // Let the event loop breathe between chunks.
    await new Promise((r) => setImmediate(r));
  }
  const totalMs = performance.now() - t0;
  return { runs, broken, totalMs, avgMs: runs ? totalMs / runs : 0, elapsedMs: performance.now() - began };
}
