// The worker-thread side of the pool: loaded by piscina in every thread. Runs a batch of
// jobs one after another, loading each job's module once per thread.
import { Buffer } from 'node:buffer';
import { workerData } from 'piscina';
import { pathToFileURL } from 'node:url';
import { isJobDefinition, type JobContext, type JobFunction } from './define-job.js';
import { jobError } from './errors.js';
import { CANCEL_SLOTS, RunState, type BatchTask, type JobOutcome, type JobSpec, type SerializedError, type WorkerData } from './protocol.js';

const cancel = new Int32Array((workerData as WorkerData).cancel);
const isCancelled = (id: number) => Atomics.load(cancel, id % CANCEL_SLOTS) === (id | 0);
const jobs = new Map<string, JobFunction<unknown, unknown> | Promise<JobFunction<unknown, unknown>>>();

/**
 * A job calling process.exit() must not take the thread (and its batch) with it. Only calls
 * made from a job's synchronous code are caught: Node itself calls process.exit to end a
 * thread after an uncaught exception, and that must keep working.
 */
class ExitCalled extends Error {
  constructor(readonly exitCode: number) {
    super('process.exit called');
  }
}
let inJob = false;
const realExit = process.exit.bind(process);
process.exit = ((code?: number | string | null) => {
  if (inJob) throw new ExitCalled(Number(code ?? 0));
  return realExit(code as number);
}) as typeof process.exit;

/**
 * Throws when `value` cannot cross back to the main thread, before piscina would fail on it
 * (and take the thread down). Walks plain objects and arrays itself and skips binary data, so
 * a result holding large buffers is not serialized twice; anything else is test-cloned.
 */
function checkTransferable(value: unknown, depth = 0): void {
  const t = typeof value;
  if (t === 'function' || t === 'symbol') throw new TypeError(`a ${t} cannot be sent back to the main thread`);
  if (t !== 'object' || value === null) return;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return;
  if (depth < 8 && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkTransferable(value[i], depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (depth < 8 && (proto === Object.prototype || proto === null)) {
    for (const key in value as Record<string, unknown>) checkTransferable((value as Record<string, unknown>)[key], depth + 1);
    return;
  }
  structuredClone(value);
}

const entry = (workerData as WorkerData).entry;

function load(spec: JobSpec): JobFunction<unknown, unknown> | Promise<JobFunction<unknown, unknown>> {
  const key = spec.module + '#' + spec.name;
  let fn = jobs.get(key);
  if (fn === undefined) {
    if (spec.module === entry) {
      // Importing the entry module would start the whole program again in this thread.
      throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', `job "${spec.name}" is defined in the program's entry module ${spec.module}; threads cannot load it (it would start the program again): move the job to a module of its own`);
    }
    const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
    fn = import(url).then((mod: Record<string, unknown>) => {
      const def = Object.values(mod).find((v) => isJobDefinition(v) && v.name === spec.name);
      if (def === undefined || !isJobDefinition(def)) {
        throw jobError('DIOCP_ERR_JOBS_UNKNOWN_JOB', `module ${spec.module} exports no job named "${spec.name}" (export the result of defineJob)`);
      }
      jobs.set(key, def.fn as JobFunction<unknown, unknown>);
      return def.fn as JobFunction<unknown, unknown>;
    });
    jobs.set(key, fn);
    // A failed import is retried next time rather than cached.
    fn.catch(() => jobs.delete(key));
  }
  return fn;
}

function serialize(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, stack: err.stack, code: typeof code === 'string' ? code : undefined };
  }
  return { name: 'Error', message: String(err) };
}

function context(spec: JobSpec, onBreak: () => void): { ctx: JobContext; controller: AbortController } {
  const controller = new AbortController();
  const ctx: JobContext = {
    id: spec.id,
    name: spec.name,
    signal: controller.signal,
    isCancelled: () => isCancelled(spec.id),
    break: onBreak,
  };
  return { ctx, controller };
}

async function runOne(spec: JobSpec): Promise<JobOutcome> {
  let start = performance.now();
  try {
    let fn = load(spec);
    if (fn instanceof Promise) {
      fn = await fn;
      // Loading the module once per thread is not the job's run time (the batcher sizes by it).
      start = performance.now();
    }
    if (spec.range) return { ok: true, value: await runRange(spec, fn), ms: performance.now() - start };
    const { ctx, controller } = context(spec, () => {});
    let value: unknown;
    inJob = true;
    try {
      value = fn(spec.data, ctx);
    } finally {
      inJob = false;
    }
    if (value instanceof Promise) {
      // While an async job runs, watch its cancel flag and fire its AbortSignal.
      const watch = setInterval(() => {
        if (isCancelled(spec.id)) {
          controller.abort(jobError('DIOCP_ERR_JOBS_CANCELLED', spec.id, spec.name));
          clearInterval(watch);
        }
      }, 5);
      try {
        value = await value;
      } finally {
        clearInterval(watch);
      }
    }
    try {
      checkTransferable(value);
    } catch (err) {
      throw jobError('DIOCP_ERR_JOBS_BAD_RESULT', spec.name, (err as Error).message);
    }
    return { ok: true, value, ms: performance.now() - start };
  } catch (err) {
    const ms = performance.now() - start;
    if (err instanceof ExitCalled) {
      return { ok: false, error: serialize(jobError('DIOCP_ERR_JOBS_PROCESS_EXIT', spec.name, err.exitCode)), ms, exit: err.exitCode };
    }
    return { ok: false, error: serialize(err), ms };
  }
}

async function runRange(spec: JobSpec, fn: JobFunction<unknown, unknown>): Promise<{ runs: number; broke: boolean; ms: number }> {
  const t0 = performance.now();
  const { from, to, breakId } = spec.range!;
  const slot = breakId % CANCEL_SLOTS;
  let broke = false;
  const { ctx } = context(spec, () => {
    broke = true;
    Atomics.store(cancel, slot, breakId | 0);
  });
  let runs = 0;
  for (let i = from; i < to; i++) {
    if (Atomics.load(cancel, slot) === (breakId | 0) || isCancelled(spec.id)) break;
    inJob = true;
    let r: unknown;
    try {
      r = fn(i, ctx);
    } finally {
      inJob = false;
    }
    if (r instanceof Promise) await r;
    runs++;
    if (broke) break;
  }
  return { runs, broke, ms: performance.now() - t0 };
}

/** Piscina calls this once per task: a batch of jobs, run in order. */
export default async function runBatch(task: BatchTask): Promise<JobOutcome[]> {
  const status = new Int32Array(task.status);
  const out: JobOutcome[] = new Array(task.jobs.length);
  for (let i = 0; i < task.jobs.length; i++) {
    const spec = task.jobs[i]!;
    if (isCancelled(spec.id)) {
      out[i] = { s: true };
      Atomics.store(status, i, RunState.Finished);
      continue;
    }
    Atomics.store(status, i, RunState.Started);
    out[i] = await runOne(spec);
    Atomics.store(status, i, RunState.Finished);
  }
  return out;
}
