// The messages between the pool (main thread) and its worker threads. Internal.

/** Job states written by the worker into a batch's status array (Int32 per job). */
export const enum RunState {
  Queued = 0,
  Started = 1,
  Finished = 2,
}

/** Size of the pool-wide cancel-flag table; slot = id % CANCEL_SLOTS, set to the id when cancelled. */
export const CANCEL_SLOTS = 65536;

export interface JobSpec {
  id: number;
  module: string;
  name: string;
  data: unknown;
  /** A chunk of a parallelFor: iterations [from, to), stop when break flag `breakId` is set. */
  range?: { from: number; to: number; breakId: number };
}

export interface BatchTask {
  /** Int32Array over this, one RunState per job: tells the pool what a dead thread had done. */
  status: SharedArrayBuffer;
  jobs: JobSpec[];
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

/**
 * One entry per job, in batch order. `s`: skipped (cancelled before it started).
 * For a range job, `value` is `{ runs, broke }`.
 */
export type JobOutcome =
  | { ok: true; value: unknown; ms: number }
  | { ok: false; error: SerializedError; ms: number; exit?: number }
  | { s: true };

export interface WorkerData {
  cancel: SharedArrayBuffer;
  /** file: URL of the main program's entry module, which a thread must never import. */
  entry: string | null;
}
