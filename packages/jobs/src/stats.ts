/** Per-job-name statistics, as QWorkers kept them. Times in milliseconds. */
export interface JobStats {
  runs: number;
  failures: number;
  cancelled: number;
  minMs: number;
  maxMs: number;
  avgMs: number;
  totalMs: number;
}

export interface PoolStats {
  /** Per job name. */
  jobs: Record<string, JobStats>;
  pool: {
    /** Worker threads alive now. */
    threads: number;
    /** Threads running a batch of jobs now. */
    busyThreads: number;
    idleThreads: number;
    /** Jobs waiting for a thread (or for the event loop, for main-thread jobs). */
    queued: number;
    /** Jobs waiting for their time (delay, at, every, cron). */
    scheduled: number;
    /** Jobs running now. */
    running: number;
    /** Job runs finished since the pool started (success or failure). */
    completed: number;
    paused: boolean;
  };
}

export class StatsBook {
  private readonly byName = new Map<string, JobStats>();

  private entry(name: string): JobStats {
    let s = this.byName.get(name);
    if (s === undefined) {
      s = { runs: 0, failures: 0, cancelled: 0, minMs: Infinity, maxMs: 0, avgMs: 0, totalMs: 0 };
      this.byName.set(name, s);
    }
    return s;
  }

  record(name: string, ms: number, ok: boolean): void {
    const s = this.entry(name);
    s.runs++;
    if (!ok) s.failures++;
    s.totalMs += ms;
    if (ms < s.minMs) s.minMs = ms;
    if (ms > s.maxMs) s.maxMs = ms;
    s.avgMs = s.totalMs / s.runs;
  }

  cancelled(name: string): void {
    this.entry(name).cancelled++;
  }

  /** Average run time of a job, or undefined before its first run (the batcher uses it). */
  average(name: string): number | undefined {
    const s = this.byName.get(name);
    return s && s.runs > 0 ? s.avgMs : undefined;
  }

  snapshot(): Record<string, JobStats> {
    const out: Record<string, JobStats> = {};
    for (const [name, s] of this.byName) out[name] = { ...s, minMs: s.runs ? s.minMs : 0 };
    return out;
  }
}
