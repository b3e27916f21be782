// Timing: delay, post { every }, at, plan (cron), and clear(), over real worker threads with
// short real clocks (tens of ms) and generous margins; one fake-clock test for very long delays.
import { describe, expect, it, vi } from 'vitest';
import { defineJob, type JobHandle, type JobPoolOptions } from '@diocp/jobs';
import { add, fail, sleep, sched_now, sched_stamp } from './fixtures/jobs.mjs';
import { codeOf, until, usePools, wait } from './helpers.js';

const makePool = usePools({ beforeDestroy: () => vi.useRealTimers() });

async function rejectionCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? 'NO_CODE';
  }
  return undefined;
}

/** A pool whose afterExecute hook records every successful run's result, per job name. */
function recordingPool(options: JobPoolOptions = {}) {
  const results = new Map<string, unknown[]>();
  const errors: { id: number; error: Error }[] = [];
  const pool = makePool({
    ...options,
    afterExecute: (job, result) => {
      const list = results.get(job.name) ?? [];
      list.push(result);
      results.set(job.name, list);
    },
    onError: (job, error) => errors.push({ id: job.id, error }),
  });
  const of = <T>(name: string) => (results.get(name) ?? []) as T[];
  return { pool, of, errors };
}

describe('delay(job, ms, data)', () => {
  it('does not run before ms, runs exactly once, and exposes nextRunAt while scheduled', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    await pool.post(add, { a: 0, b: 0 }).result; // threads up
    const t0 = Date.now();
    const h = pool.delay(sched_now, 80, null);
    expect(h.state).toBe('scheduled');
    expect(h.nextRunAt).toBeInstanceOf(Date);
    expect(h.nextRunAt!.getTime()).toBeGreaterThanOrEqual(t0 + 80);
    expect(h.nextRunAt!.getTime()).toBeLessThanOrEqual(Date.now() + 80);
    expect(pool.stats().pool.scheduled).toBe(1);
    await wait(30);
    expect(h.runs).toBe(0);
    expect(of('sched_now')).toHaveLength(0);

    const startedAt = (await h.result) as number;
    expect(startedAt - t0).toBeGreaterThanOrEqual(80 - 5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80 - 5);

    await wait(150);
    expect(h.runs).toBe(1);
    expect(of('sched_now')).toHaveLength(1);
    expect(h.state).toBe('done');
    expect(h.nextRunAt).toBeNull();
    expect(h.lastResult).toBe(startedAt);
    expect(pool.stats().pool.scheduled).toBe(0);
  });

  it('delay 0 runs promptly', { timeout: 10_000 }, async () => {
    const pool = makePool();
    await pool.post(add, { a: 0, b: 0 }).result; // threads up
    const t0 = Date.now();
    const h = pool.delay(add, 0, { a: 2, b: 3 });
    expect(await h.result).toBe(5);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(h.runs).toBe(1);
  });

  it('with { every } repeats (runs grows, lastResult updates) until cancel(), then never again', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    const t0 = Date.now();
    const h = pool.delay(sched_now, 40, null, { every: 30 });
    expect(h.nextRunAt!.getTime()).toBeGreaterThanOrEqual(t0 + 40);
    const first = (await h.result) as number;
    expect(first - t0).toBeGreaterThanOrEqual(40 - 5);

    await until(() => h.runs >= 3, 5000, 'three runs');
    const results = of<number>('sched_now');
    expect(results.length).toBeGreaterThanOrEqual(3);
    // lastResult follows the latest run; every run started later than the one before.
    for (let i = 1; i < results.length; i++) expect(results[i]!).toBeGreaterThan(results[i - 1]!);
    expect(h.lastResult).toBeGreaterThan(first);

    // Between runs it waits for its next time.
    await until(() => h.state === 'scheduled', 2000, 'scheduled between runs');
    expect(h.nextRunAt).toBeInstanceOf(Date);
    expect(h.nextRunAt!.getTime()).toBeGreaterThan(Date.now() - 5);

    expect(h.cancel()).toBe(true);
    expect(h.state).toBe('cancelled');
    expect(h.nextRunAt).toBeNull();
    const runsAtCancel = h.runs;
    await wait(200);
    expect(h.runs).toBe(runsAtCancel);
    expect(of('sched_now')).toHaveLength(runsAtCancel);
    expect(pool.stats().pool.scheduled).toBe(0);
    // The first run's result is kept.
    expect(await h.result).toBe(first);
  });

  it('a delayed job cancelled before its time never runs; its result rejects DIOCP_ERR_JOBS_CANCELLED', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    const h = pool.delay(add, 50, { a: 1, b: 1 });
    expect(pool.cancel(h)).toBe(true);
    expect(await rejectionCode(h.result)).toBe('DIOCP_ERR_JOBS_CANCELLED');
    await wait(150);
    expect(of('add')).toHaveLength(0);
    expect(h.runs).toBe(0);
  });

  it('bad arguments are coded errors at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.delay(add, -1, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.delay(add, Number.NaN, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.delay(add, 10, { a: 1, b: 1 }, { every: 0 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.post(add, { a: 1, b: 1 }, { every: -5 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.delay({ name: 'x' } as never, 10, null))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(pool.stats().pool.scheduled).toBe(0);
  });

  it('a delay beyond the 24.8-day timer limit fires at its time, not early (fake clock)', { timeout: 10_000 }, async () => {
    const pool = makePool({ maxThreads: 1 });
    let ran = 0;
    const tick = defineJob(import.meta.url, 'sched_tick', () => ++ran, { mainThread: true });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const day = 24 * 3600 * 1000;
    const t0 = Date.now();
    const h = pool.delay(tick, 40 * day, null);
    expect(h.nextRunAt!.getTime()).toBe(t0 + 40 * day);
    await vi.advanceTimersByTimeAsync(39 * day);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(0);
    expect(h.state).toBe('scheduled');
    await vi.advanceTimersByTimeAsync(day + 10);
    vi.useRealTimers();
    expect(await h.result).toBe(1);
    expect(ran).toBe(1);
  });
});

describe('post(job, data, { every })', () => {
  it('runs now, then again with at least `every` ms between a run end and the next start (fixed delay)', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    await pool.post(add, { a: 0, b: 0 }).result; // threads up
    const t0 = Date.now();
    const every = 40;
    const h = pool.post(sched_stamp, 25, { every });
    const first = (await h.result) as { start: number; end: number };
    expect(first.start - t0).toBeLessThan(1000); // first run now, not after `every`
    await until(() => h.runs >= 4, 5000, 'four runs');
    h.cancel();
    const stamps = of<{ start: number; end: number }>('sched_stamp');
    expect(stamps.length).toBeGreaterThanOrEqual(4);
    expect(stamps[0]).toEqual(first);
    for (let i = 1; i < stamps.length; i++) {
      // Fixed delay: the gap is measured from the end of a run (25 ms long), not from its start.
      expect(stamps[i]!.start - stamps[i - 1]!.end).toBeGreaterThanOrEqual(every - 5);
      expect(stamps[i]!.start - stamps[i - 1]!.start).toBeGreaterThanOrEqual(every + 25 - 5);
    }
    const n = h.runs;
    await wait(150);
    expect(h.runs).toBe(n);
  });

  it('a failing repeating job keeps repeating and reports every failure to onError', { timeout: 10_000 }, async () => {
    const { pool, errors } = recordingPool();
    const h = pool.post(fail, 'again', { every: 25 });
    const err = await h.result.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toBe('failed on purpose: again');
    await until(() => errors.length >= 3, 5000, 'three failures');
    expect(errors.every((e) => e.id === h.id)).toBe(true);
    expect(errors.every((e) => e.error.message === 'failed on purpose: again')).toBe(true);
    expect((errors[0]!.error as { code?: string }).code).toBe('E_PURPOSE');
    expect(h.state).not.toBe('failed');
    expect(pool.stats().jobs.fail!.failures).toBeGreaterThanOrEqual(3);

    expect(h.cancel()).toBe(true);
    const n = errors.length;
    await wait(150);
    expect(errors.length).toBe(n);
  });
});

describe('at(job, Date | epoch ms, data)', () => {
  it('runs at the given Date, not before', { timeout: 10_000 }, async () => {
    const pool = makePool();
    await pool.post(add, { a: 0, b: 0 }).result;
    const when = new Date(Date.now() + 80);
    const h = pool.at(sched_now, when, null);
    expect(h.state).toBe('scheduled');
    expect(h.nextRunAt!.getTime()).toBe(when.getTime());
    await wait(30);
    expect(h.runs).toBe(0);
    const started = (await h.result) as number;
    expect(started).toBeGreaterThanOrEqual(when.getTime() - 5);
    await wait(100);
    expect(h.runs).toBe(1);
  });

  it('accepts epoch milliseconds', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const when = Date.now() + 60;
    const h = pool.at(sched_now, when, null);
    expect(h.nextRunAt!.getTime()).toBe(when);
    const started = (await h.result) as number;
    expect(started).toBeGreaterThanOrEqual(when - 5);
  });

  it('a past time runs now', { timeout: 10_000 }, async () => {
    const pool = makePool();
    await pool.post(add, { a: 0, b: 0 }).result;
    const t0 = Date.now();
    const h = pool.at(add, new Date(t0 - 60_000), { a: 4, b: 5 });
    expect(await h.result).toBe(9);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('with { every } starts at the time, then repeats until cancelled', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    const when = Date.now() + 50;
    const h = pool.at(sched_now, when, null, { every: 30 });
    await until(() => h.runs >= 3, 5000, 'three runs');
    h.cancel();
    const starts = of<number>('sched_now');
    expect(starts[0]!).toBeGreaterThanOrEqual(when - 5);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(30 - 5);
    const n = h.runs;
    await wait(120);
    expect(h.runs).toBe(n);
  });

  it('an invalid time is a coded error at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.at(add, new Date('not a date'), { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.at(add, Number.NaN, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.at(add, '2020-01-01' as never, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });
});

describe('plan(job, cron, data)', () => {
  it("'* * * * * *' runs once per second at second boundaries until cancelled", { timeout: 12_000 }, async () => {
    const { pool, of } = recordingPool();
    await pool.post(add, { a: 0, b: 0 }).result;
    const h = pool.plan(sched_now, '* * * * * *', null);
    expect(h.state).toBe('scheduled');
    expect(h.nextRunAt!.getTime() % 1000).toBe(0);
    expect(h.nextRunAt!.getTime()).toBeGreaterThan(Date.now() - 5);
    expect(h.nextRunAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);

    await wait(2500);
    const starts = of<number>('sched_now');
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.length).toBeLessThanOrEqual(3);
    for (const s of starts) expect(s % 1000).toBeLessThan(500); // just after a boundary
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(900);
    expect(h.runs).toBe(starts.length);
    expect(await h.result).toBe(starts[0]);

    expect(h.cancel()).toBe(true);
    const n = h.runs;
    await wait(1200);
    expect(h.runs).toBe(n);
    expect(of('sched_now')).toHaveLength(n);
  });

  it('a bad cron expression is DIOCP_ERR_JOBS_BAD_CRON at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.plan(add, 'not a cron', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
    expect(codeOf(() => pool.plan(add, '61 * * * * *', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
    expect(codeOf(() => pool.plan(add, 42 as never, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
    expect(pool.stats().pool.scheduled).toBe(0);
  });

  it('a cron that never fires (30 February) is DIOCP_ERR_JOBS_BAD_CRON', () => {
    const pool = makePool();
    expect(codeOf(() => pool.plan(add, '0 0 0 30 2 *', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
    expect(codeOf(() => pool.plan(add, '0 0 30 2 *', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
  });
});

describe('clear()', () => {
  it('cancels queued and scheduled jobs (they never run) and returns how many', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool({ maxThreads: 1 });
    // Warm the thread first: a job handed to a thread that is still starting has not started,
    // and clear() would rightly cancel it too.
    await pool.post(sleep, 1, {}).result;
    // Long enough that the thread is still busy when the jobs below are posted, even on a
    // loaded machine (a free thread would take them at once instead of queueing them).
    const busy = pool.post(sleep, 1500, {});
    await until(() => busy.state === 'running', 3000, 'the sleep job to start');
    await wait(20);
    const queued = [pool.post(add, { a: 1, b: 1 }), pool.post(add, { a: 2, b: 2 }), pool.post(add, { a: 3, b: 3 })];
    const scheduled: JobHandle<unknown>[] = [
      pool.delay(add, 40, { a: 4, b: 4 }),
      pool.at(add, Date.now() + 60, { a: 5, b: 5 }),
      pool.delay(add, 20, { a: 6, b: 6 }, { every: 20 }),
      pool.plan(add, '* * * * * *', { a: 7, b: 7 }),
    ];
    expect(pool.stats().pool.scheduled).toBe(4);
    expect(pool.clear()).toBe(7);
    for (const h of [...queued, ...scheduled]) {
      expect(h.state).toBe('cancelled');
      expect(await rejectionCode(h.result)).toBe('DIOCP_ERR_JOBS_CANCELLED');
    }
    expect(pool.stats().pool.scheduled).toBe(0);
    expect(pool.stats().pool.queued).toBe(0);
    // The running job is not cleared.
    // It ends past the next second boundary, when the cleared plan would have fired.
    expect(await busy.result).toBe(1500);
    expect(of('add')).toHaveLength(0);
    expect(pool.clear()).toBe(0);
  });

  it('clear(handle) cancels that job only', { timeout: 10_000 }, async () => {
    const { pool, of } = recordingPool();
    const a = pool.delay(add, 30, { a: 1, b: 2 });
    const b = pool.delay(add, 30, { a: 3, b: 4 });
    expect(pool.clear(a)).toBe(1);
    expect(pool.clear(a)).toBe(0);
    expect(await b.result).toBe(7);
    expect(await rejectionCode(a.result)).toBe('DIOCP_ERR_JOBS_CANCELLED');
    await wait(50);
    expect(of('add')).toEqual([7]);
  });

  it('cancels a job that waits behind a running one on the same thread (posted in the same tick)', { timeout: 10_000 }, async () => {
    // One thread: `add` was posted together with the slow job and has not started when clear() runs.
    const { pool, of } = recordingPool({ maxThreads: 1 });
    const slow = pool.post(sleep, 200, {});
    const behind = pool.post(add, { a: 1, b: 1 });
    await wait(60);
    expect(slow.state).toBe('running');
    const n = pool.clear();
    expect(await slow.result).toBe(200);
    await wait(50);
    expect(of('add')).toHaveLength(0); // it had not started: clear() must stop it
    expect(n).toBe(1);
    expect(behind.state).toBe('cancelled');
  });
});
