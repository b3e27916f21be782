// Job groups (QWorkers' TQJobGroup): sequential order, parallel with maxConcurrency, run
// timeout, cancel (with and without waitRunning), afterDone, add after run, clear({ group }).
import { beforeEach, describe, expect, it } from 'vitest';
import { defineJob, type JobContext, type Settled } from '@diocp/jobs';
import { add, fail, sched_stamp } from './fixtures/jobs.mjs';
import { codeOf, until, usePools, wait } from './helpers.js';

const makePool = usePools();

/** Settles `p` into { ok, value | error } so a test can inspect how it ended, with a bound. */
async function outcome<T>(p: Promise<T>, boundMs = 5000): Promise<{ ok: true; value: T } | { ok: false; error: Error & { code?: string } }> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${boundMs} ms`)), boundMs);
  });
  try {
    return { ok: true, value: await Promise.race([p, bound]) };
  } catch (error) {
    if ((error as Error).message === `not settled within ${boundMs} ms`) throw error;
    return { ok: false, error: error as Error & { code?: string } };
  } finally {
    clearTimeout(timer);
  }
}

// Main-thread jobs that log their start and end (they close over module state).
let log: string[] = [];
let current = 0;
let peak = 0;
let aborted: number[] = [];
beforeEach(() => {
  log = [];
  current = 0;
  peak = 0;
  aborted = [];
});

const step = defineJob(
  import.meta.url,
  'group_step',
  async (d: { id: number; ms: number }, ctx: JobContext) => {
    log.push(`s${d.id}`);
    current++;
    peak = Math.max(peak, current);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, d.ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          aborted.push(d.id);
          reject(new Error(`step ${d.id} aborted`));
        });
      });
    } finally {
      current--;
    }
    log.push(`e${d.id}`);
    return d.id;
  },
  { mainThread: true },
);

const ok = <T>(value: T): Settled<T> => ({ status: 'fulfilled', value });

describe('group({ sequential: true })', () => {
  it('runs jobs strictly one after another in add order; done resolves with results in add order', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    // Durations chosen so that running them at once would finish out of order.
    for (const [id, ms] of [
      [1, 40],
      [2, 5],
      [3, 25],
      [4, 1],
    ] as const)
      g.add(step, { id, ms });
    expect(g.size).toBe(4);
    const results = await g.run();
    expect(log).toEqual(['s1', 'e1', 's2', 'e2', 's3', 'e3', 's4', 'e4']);
    expect(results).toEqual([ok(1), ok(2), ok(3), ok(4)]);
    expect(await g.done).toBe(results);
  });

  it('worker jobs too: each starts after the previous one ended', { timeout: 10_000 }, async () => {
    const pool = makePool({ maxThreads: 3 });
    const g = pool.group({ sequential: true });
    for (let i = 0; i < 4; i++) g.add(sched_stamp, 30);
    const results = await g.run();
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const stamps = results.map((r) => (r as { value: { start: number; end: number } }).value);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!.start).toBeGreaterThanOrEqual(stamps[i - 1]!.end);
  });

  it('a rejected job is reported in place and the rest still run', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(add, { a: 1, b: 2 }).add(fail, 'in a group').add(add, { a: 3, b: 4 });
    const results = await g.run();
    expect(results).toHaveLength(3);
    expect(results[0]).toEqual(ok(3));
    expect(results[1]!.status).toBe('rejected');
    const reason = (results[1] as { reason: Error & { code?: string } }).reason;
    expect(reason).toBeInstanceOf(Error);
    expect(reason.message).toBe('failed on purpose: in a group');
    expect(reason.code).toBe('E_PURPOSE');
    expect(results[2]).toEqual(ok(7));
  });
});

describe('parallel group', () => {
  it('with maxConcurrency 2 never runs more than 2 at once, and all finish', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ maxConcurrency: 2 });
    for (let id = 1; id <= 7; id++) g.add(step, { id, ms: 25 });
    const results = await g.run();
    expect(peak).toBe(2);
    expect(results).toEqual([1, 2, 3, 4, 5, 6, 7].map(ok));
    expect(log.filter((e) => e.startsWith('e'))).toHaveLength(7);
  });

  it('with maxConcurrency 2 over worker threads (4 threads): at most 2 worker jobs overlap', { timeout: 10_000 }, async () => {
    const pool = makePool({ maxThreads: 4 });
    const g = pool.group({ maxConcurrency: 2 });
    for (let i = 0; i < 6; i++) g.add(sched_stamp, 40);
    const results = await g.run();
    const stamps = results.map((r) => (r as { value: { start: number; end: number } }).value);
    expect(stamps).toHaveLength(6);
    // Most intervals overlapping at any start instant.
    let maxOverlap = 0;
    for (const s of stamps) {
      const overlapping = stamps.filter((o) => o.start <= s.start && s.start < o.end).length;
      maxOverlap = Math.max(maxOverlap, overlapping);
    }
    expect(maxOverlap).toBeLessThanOrEqual(2);
  });

  it('without a limit runs jobs at once', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group();
    for (let id = 1; id <= 4; id++) g.add(step, { id, ms: 40 });
    await g.run();
    expect(peak).toBe(4);
  });

  it('maxConcurrency 0 (or not a whole number) is a coded error at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.group({ maxConcurrency: 0 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.group({ maxConcurrency: -1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.group({ maxConcurrency: 1.5 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    const g = pool.group();
    expect(codeOf(() => g.add({ nope: true } as never, 1))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(codeOf(() => g.run({ timeoutMs: -5 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });
});

describe('group.run({ timeoutMs })', () => {
  it('done rejects DIOCP_ERR_JOBS_GROUP_TIMEOUT when jobs are still running at the timeout', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 400 }).add(step, { id: 2, ms: 400 }).add(step, { id: 3, ms: 400 });
    const t0 = Date.now();
    const result = await outcome(g.run({ timeoutMs: 100 }));
    const took = Date.now() - t0;
    // Shows what done resolved with, if it resolved instead of rejecting.
    expect(result.ok ? { resolvedWith: result.value } : result.error.code).toBe('DIOCP_ERR_JOBS_GROUP_TIMEOUT');
    expect(took).toBeGreaterThanOrEqual(100 - 5);
    expect(took).toBeLessThan(350); // well before the first 400 ms job would have ended
  });

  it('done rejects DIOCP_ERR_JOBS_GROUP_TIMEOUT for slow worker jobs in a parallel group', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ maxConcurrency: 2 });
    for (let i = 0; i < 4; i++) g.add(sched_stamp, 2000);
    const result = await outcome(g.run({ timeoutMs: 80 }));
    expect(result.ok ? { resolvedWith: result.value.map((r) => r.status) } : result.error.code).toBe('DIOCP_ERR_JOBS_GROUP_TIMEOUT');
    const t1 = Date.now();
    await pool.idle(); // the running worker jobs were told to stop
    expect(Date.now() - t1).toBeLessThan(1500);
  });

  it('at the timeout the running job is aborted and the remaining jobs never run', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 400 }).add(step, { id: 2, ms: 400 }).add(step, { id: 3, ms: 400 });
    const afterDone: Settled[][] = [];
    g.afterDone((r) => afterDone.push(r));
    await outcome(g.run({ timeoutMs: 100 }));
    await wait(600);
    expect(log).toEqual(['s1']); // job 1 was stopped, jobs 2 and 3 never started
    expect(aborted).toEqual([1]);
    expect(afterDone.length).toBeLessThanOrEqual(1);
  });

  it('done resolves normally when the jobs finish within timeoutMs', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 10 }).add(add, { a: 2, b: 2 });
    expect(await g.run({ timeoutMs: 3000 })).toEqual([ok(1), ok(4)]);
  });
});

describe('group.cancel()', () => {
  it('jobs not started never run; the running one is cancelled; done settles', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 300 }).add(step, { id: 2, ms: 10 }).add(step, { id: 3, ms: 10 });
    const done = outcome(g.run());
    await until(() => log.includes('s1'), 3000, 'job 1 to start');
    await g.cancel();
    const r = await done;
    expect(r.ok).toBe(true);
    const results = (r as { value: Settled[] }).value;
    expect(results.map((x) => x.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const x of results) expect((x as { reason: { code?: string } }).reason.code).toBe('DIOCP_ERR_JOBS_CANCELLED');
    await wait(150);
    expect(log).toEqual(['s1']);
    expect(aborted).toEqual([1]);
    expect(codeOf(() => g.add(step, { id: 9, ms: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });

  it('cancel({ waitRunning: true }) resolves only after the running job finished; later jobs never run', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 120 }).add(step, { id: 2, ms: 10 }).add(step, { id: 3, ms: 10 });
    const done = outcome(g.run());
    await until(() => log.includes('s1'), 3000, 'job 1 to start');
    const t0 = Date.now();
    await g.cancel({ waitRunning: true });
    expect(log).toEqual(['s1', 'e1']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    expect(aborted).toEqual([]);
    const r = await done;
    expect(r.ok).toBe(true);
    const results = (r as { value: Settled[] }).value;
    expect(results[0]).toEqual(ok(1));
    expect(results.slice(1).map((x) => (x as { reason: { code?: string } }).reason.code)).toEqual([
      'DIOCP_ERR_JOBS_CANCELLED',
      'DIOCP_ERR_JOBS_CANCELLED',
    ]);
    await wait(100);
    expect(log).toEqual(['s1', 'e1']);
  });

  it('cancel({ waitRunning: true }) over worker jobs waits for them', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ maxConcurrency: 2 });
    for (let i = 0; i < 5; i++) g.add(sched_stamp, 100);
    const done = outcome(g.run());
    await wait(40);
    await g.cancel({ waitRunning: true });
    const at = Date.now();
    const r = await done;
    const results = (r as { value: Settled[] }).value;
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const x of results.slice(0, 2)) expect(at).toBeGreaterThanOrEqual((x as { value: { end: number } }).value.end);
  });
});

describe('afterDone and add after run', () => {
  it('afterDone is called once with the results', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const calls: Settled[][] = [];
    const g = pool.group().afterDone((r) => calls.push(r));
    g.add(add, { a: 1, b: 1 }).add(step, { id: 5, ms: 5 });
    const results = await g.run();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBe(results);
    expect(results).toEqual([ok(2), ok(5)]);
    await wait(30);
    expect(calls).toHaveLength(1);
  });

  it('afterDone is called after a cancel too', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const calls: Settled[][] = [];
    const g = pool.group({ sequential: true }).afterDone((r) => calls.push(r));
    g.add(step, { id: 1, ms: 200 }).add(step, { id: 2, ms: 1 });
    void g.run();
    await until(() => log.includes('s1'), 3000, 'job 1 to start');
    await g.cancel();
    await until(() => calls.length > 0, 2000, 'afterDone');
    expect(calls[0]!.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('add() while the group runs adds to it (in order for a sequential group)', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 60 });
    const done = g.run();
    g.add(step, { id: 2, ms: 5 });
    await wait(20);
    g.add(add, { a: 10, b: 20 });
    const results = await done;
    expect(results).toEqual([ok(1), ok(2), ok(30)]);
    expect(log).toEqual(['s1', 'e1', 's2', 'e2']);
  });

  it('run() on an empty group resolves with no results', { timeout: 5_000 }, async () => {
    const pool = makePool();
    expect(await pool.group().run()).toEqual([]);
  });
});

describe('clear({ group })', () => {
  it('cancels the group jobs that have not started, returns how many; the running one finishes', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const g = pool.group({ sequential: true });
    g.add(step, { id: 1, ms: 80 }).add(step, { id: 2, ms: 5 }).add(step, { id: 3, ms: 5 });
    const done = outcome(g.run());
    await until(() => log.includes('s1'), 3000, 'job 1 to start');
    expect(pool.clear({ group: g })).toBe(2);
    const r = await done;
    expect(r.ok).toBe(true);
    const results = (r as { value: Settled[] }).value;
    expect(results[0]).toEqual(ok(1));
    expect(results.slice(1).map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await wait(50);
    expect(log).toEqual(['s1', 'e1']);
    expect(pool.clear({ group: g })).toBe(0);
  });
});
