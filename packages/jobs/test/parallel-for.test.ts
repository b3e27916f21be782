// parallelFor(start, stop, job, { chunk }): every iteration exactly once, early break,
// timing fields, failures, bad arguments, and the use of every thread.
import { describe, expect, it } from 'vitest';
import { defineJob, type JobContext, type ParallelForResult } from '@diocp/jobs';
import { badFor, breakAt, sched_mark, sched_spinFor, square } from './fixtures/jobs.mjs';
import { usePools, wait } from './helpers.js';

const makePool = usePools();

/** The coded error of a call that either throws at once or returns a rejected promise. */
async function errorOf(fn: () => Promise<unknown>): Promise<(Error & { code?: string }) | undefined> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  return undefined;
}

/** Counts the indices that sched_mark bodies report from the worker threads. */
function markCounter() {
  const counts = new Map<number, number>();
  let total = 0;
  const channel = new BroadcastChannel('sched_pf');
  channel.onmessage = (e: MessageEvent) => {
    const i = e.data as number;
    counts.set(i, (counts.get(i) ?? 0) + 1);
    total++;
  };
  return {
    counts,
    get total() {
      return total;
    },
    async settle(expected: number, timeoutMs = 3000) {
      const end = Date.now() + timeoutMs;
      while (total < expected && Date.now() < end) await wait(5);
      await wait(30); // let any duplicate arrive too
    },
    close: () => channel.close(),
  };
}

function checkTiming(r: ParallelForResult): void {
  expect(r.totalMs).toBeGreaterThanOrEqual(0);
  expect(r.elapsedMs).toBeGreaterThanOrEqual(0);
  expect(Number.isFinite(r.avgMs)).toBe(true);
  if (r.runs > 0) expect(r.avgMs).toBeCloseTo(r.totalMs / r.runs, 9);
}

describe('parallelFor over worker threads', () => {
  it('runs every iteration exactly once (start offset, uneven last chunk)', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const marks = markCounter();
    try {
      const r = await pool.parallelFor(100, 2107, sched_mark, { chunk: 50 });
      expect(r.runs).toBe(2007);
      expect(r.broken).toBe(false);
      checkTiming(r);
      await marks.settle(2007);
      expect(marks.total).toBe(2007);
      expect(marks.counts.size).toBe(2007);
      for (let i = 100; i < 2107; i++) expect(marks.counts.get(i), `index ${i}`).toBe(1);
      expect(pool.stats().jobs.sched_mark!.failures).toBe(0);
    } finally {
      marks.close();
    }
  });

  it('with the default chunk too', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const marks = markCounter();
    try {
      const r = await pool.parallelFor(0, 333, sched_mark);
      expect(r.runs).toBe(333);
      await marks.settle(333);
      expect([...marks.counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 333 }, (_, i) => i));
      expect([...marks.counts.values()].every((n) => n === 1)).toBe(true);
    } finally {
      marks.close();
    }
  });

  it('runs === stop - start for a pure body, with chunk 1 and with one big chunk', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const a = await pool.parallelFor(0, 200, square, { chunk: 1 });
    expect(a.runs).toBe(200);
    expect(a.broken).toBe(false);
    checkTiming(a);
    const b = await pool.parallelFor(-50, 50, square, { chunk: 1000 });
    expect(b.runs).toBe(100);
    checkTiming(b);
  });

  it('ctx.break() stops the loop early: runs < total and broken', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const r = await pool.parallelFor(0, 10_000, breakAt, { chunk: 20 });
    expect(r.broken).toBe(true);
    expect(r.runs).toBeGreaterThan(0);
    expect(r.runs).toBeLessThan(10_000);
    checkTiming(r);
    // Nothing of the loop keeps running afterwards.
    const t0 = Date.now();
    await pool.idle();
    expect(Date.now() - t0).toBeLessThan(2000);
    // The pool still works, and a later loop is not stopped by the earlier break.
    const again = await pool.parallelFor(0, 1000, square, { chunk: 20 });
    expect(again).toMatchObject({ runs: 1000, broken: false });
  });

  it('a break after many iterations: the iterations before it ran', { timeout: 15_000 }, async () => {
    const pool = makePool({ maxThreads: 1 });
    // One thread, chunks in order: iterations 0..500 run, then the loop stops.
    const r = await pool.parallelFor(0, 10_000, breakAt, { chunk: 100 });
    expect(r.broken).toBe(true);
    expect(r.runs).toBe(501);
  });

  it('timing: totalMs sums the chunks, avgMs = totalMs / runs', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const r = await pool.parallelFor(0, 40, sched_spinFor, { chunk: 5 });
    expect(r.runs).toBe(40);
    checkTiming(r);
    // Each iteration spins about 3 ms.
    expect(r.totalMs).toBeGreaterThanOrEqual(40 * 3 * 0.9);
    expect(r.avgMs).toBeGreaterThanOrEqual(3 * 0.9);
  });

  it('a throwing body rejects with that error', { timeout: 15_000 }, async () => {
    const pool = makePool();
    const err = await errorOf(() => pool.parallelFor(0, 100, badFor, { chunk: 5 }));
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toBe('iteration 7 broke');
    expect(err!.stack).toContain('iteration 7 broke');
    // The pool goes on.
    expect((await pool.parallelFor(0, 10, square)).runs).toBe(10);
  });

  it('uses every thread: a chunked CPU-bound loop on 2 threads beats the serial time', { timeout: 20_000 }, async () => {
    const pool = makePool({ maxThreads: 2, minThreads: 2 });
    await pool.parallelFor(0, 8, sched_spinFor, { chunk: 1 }); // warm both threads
    let best = Infinity;
    let serial = 0;
    let parallel = 0;
    // Best of two attempts, so a burst of load elsewhere on the machine does not decide it.
    for (let attempt = 0; attempt < 2 && best >= 0.8; attempt++) {
      const s = await pool.parallelFor(0, 80, sched_spinFor, { chunk: 80 }); // one chunk: one thread
      const p = await pool.parallelFor(0, 80, sched_spinFor, { chunk: 4 });
      expect(s.runs).toBe(80);
      expect(p.runs).toBe(80);
      serial = s.elapsedMs;
      parallel = p.elapsedMs;
      best = Math.min(best, parallel / serial);
    }
    expect(serial).toBeGreaterThanOrEqual(80 * 3 * 0.9);
    expect(best, `parallel ${parallel.toFixed(0)} ms vs serial ${serial.toFixed(0)} ms`).toBeLessThan(0.8);
  });
});

describe('parallelFor arguments and edge cases', () => {
  it('an empty range resolves with runs 0', { timeout: 5_000 }, async () => {
    const pool = makePool();
    const r = await pool.parallelFor(5, 5, square);
    expect(r).toMatchObject({ runs: 0, broken: false, totalMs: 0, avgMs: 0 });
  });

  it('start > stop is a coded error', { timeout: 5_000 }, async () => {
    const pool = makePool();
    expect((await errorOf(() => pool.parallelFor(10, 0, square)))?.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect((await errorOf(() => pool.parallelFor(0.5, 10, square)))?.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect((await errorOf(() => pool.parallelFor(0, Number.POSITIVE_INFINITY, square)))?.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });

  it('a bad chunk is a coded error', { timeout: 5_000 }, async () => {
    const pool = makePool();
    expect((await errorOf(() => pool.parallelFor(0, 10, square, { chunk: 0 })))?.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect((await errorOf(() => pool.parallelFor(0, 10, square, { chunk: 2.5 })))?.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });

  it('a body that is not a job is DIOCP_ERR_JOBS_UNKNOWN_JOB', { timeout: 5_000 }, async () => {
    const pool = makePool();
    expect((await errorOf(() => pool.parallelFor(0, 10, ((i: number) => i) as never)))?.code).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect((await errorOf(() => pool.parallelFor(0, 0, { name: 'square' } as never)))?.code).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(pool.stats().pool.queued).toBe(0);
  });

  it('a main-thread body sees every index exactly once and can break', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const seen: number[] = [];
    const body = defineJob(import.meta.url, 'pf_main', (i: number) => void seen.push(i), { mainThread: true });
    const r = await pool.parallelFor(3, 250, body, { chunk: 16 });
    expect(r).toMatchObject({ runs: 247, broken: false });
    checkTiming(r);
    expect(seen).toEqual(Array.from({ length: 247 }, (_, k) => k + 3));

    const hits: number[] = [];
    const stopper = defineJob(
      import.meta.url,
      'pf_main_break',
      (i: number, ctx: JobContext) => {
        hits.push(i);
        if (i === 30) ctx.break();
      },
      { mainThread: true },
    );
    const b = await pool.parallelFor(0, 1000, stopper, { chunk: 7 });
    expect(b.broken).toBe(true);
    expect(b.runs).toBe(31);
    expect(hits).toEqual(Array.from({ length: 31 }, (_, k) => k));
  });
});
