// Signals: onSignal / signal (wait for every listener, timeout), postSignal (queued, serial),
// unsubscribe, clear({ signal }); over real worker threads.
import { describe, expect, it } from 'vitest';
import type { JobContext } from '@diocp/jobs';
import { add, fail, sleep, sched_sigWork } from './fixtures/jobs.mjs';
import { codeOf, rejection, usePools, wait } from './helpers.js';

const makePool = usePools();

/** An abortable wait for main-thread jobs. */
function abortableWait(ms: number, ctx: JobContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    });
  });
}

type WorkerOut = { tag: 'worker'; a: number; start: number; end: number };
type MainOut = { tag: 'main'; a: number; start: number; end: number };

describe('onSignal / signal', () => {
  it('runs a worker job and a main-thread function with the data; resolves in registration order after both finished', { timeout: 10_000 }, async () => {
    const pool = makePool();
    let mainDone = false;
    pool.onSignal('ready', async (d: { a: number; ms: number }) => {
      const start = Date.now();
      await wait(d.ms + 30); // the main-thread job finishes last
      mainDone = true;
      return { tag: 'main', a: d.a, start, end: Date.now() } satisfies MainOut;
    });
    pool.onSignal('ready', sched_sigWork);
    const results = (await pool.signal('ready', { a: 7, ms: 40 })) as [MainOut, WorkerOut];
    const at = Date.now();
    expect(mainDone).toBe(true);
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ tag: 'main', a: 7 });
    expect(results[1]).toMatchObject({ tag: 'worker', a: 7 });
    expect(results[1].end - results[1].start).toBeGreaterThanOrEqual(40 - 5);
    expect(at).toBeGreaterThanOrEqual(results[0].end);
    expect(at).toBeGreaterThanOrEqual(results[1].end);

    // Registration order, not finishing order: the worker job listed first now, and it finishes last.
    const pool2 = makePool();
    pool2.onSignal('go', sched_sigWork);
    pool2.onSignal('go', (d: { a: number }) => ({ tag: 'main', a: d.a * 2 }));
    expect(await pool2.signal('go', { a: 5, ms: 50 })).toEqual([
      expect.objectContaining({ tag: 'worker', a: 5 }),
      { tag: 'main', a: 10 },
    ]);
  });

  it('fires every time it is signalled', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const seen: number[] = [];
    pool.onSignal('tick', (n: number) => (seen.push(n), n));
    pool.onSignal('tick', add as never);
    expect(await pool.signal('tick', 1)).toEqual([1, expect.anything()]);
    expect(await pool.signal('tick', 2)).toEqual([2, expect.anything()]);
    expect(seen).toEqual([1, 2]);
  });

  it('the unsubscribe function removes that listener only; with none left the signal is unknown', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const calls: string[] = [];
    const offA = pool.onSignal('s', () => (calls.push('A'), 'A'));
    const offB = pool.onSignal('s', () => (calls.push('B'), 'B'));
    const offW = pool.onSignal('s', add);
    expect(await pool.signal('s', { a: 1, b: 2 })).toEqual(['A', 'B', 3]);
    offA();
    expect(await pool.signal('s', { a: 1, b: 2 })).toEqual(['B', 3]);
    offW();
    expect(await pool.signal('s', { a: 1, b: 2 })).toEqual(['B']);
    offB();
    expect(codeOf(() => pool.signal('s', {}))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(calls).toEqual(['A', 'B', 'B', 'B']);
  });

  it('calling an unsubscribe function twice does not remove listeners registered later', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const off = pool.onSignal('again', () => 'old');
    off();
    pool.onSignal('again', () => 'new');
    off(); // already unsubscribed: must be a no-op
    expect(await pool.signal('again')).toEqual(['new']);
  });

  it('with timeoutMs rejects DIOCP_ERR_JOBS_SIGNAL_TIMEOUT when a job is slow, and cancels the slow jobs', { timeout: 10_000 }, async () => {
    const cancelled: string[] = [];
    const pool = makePool({ beforeCancel: (job) => cancelled.push(job.name) });
    let mainAborted = false;
    pool.onSignal('slow', async (ms: number, ctx: JobContext) => {
      ctx.signal.addEventListener('abort', () => (mainAborted = true));
      await abortableWait(ms, ctx);
      return 'main';
    });
    pool.onSignal('slow', sleep);
    const t0 = Date.now();
    const err = await rejection(pool.signal('slow', 5000, { timeoutMs: 80 }));
    const took = Date.now() - t0;
    expect(err?.code).toBe('DIOCP_ERR_JOBS_SIGNAL_TIMEOUT');
    expect(took).toBeGreaterThanOrEqual(80 - 5);
    expect(took).toBeLessThan(3000);
    expect(mainAborted).toBe(true);
    expect(cancelled.sort()).toEqual(['signal:slow', 'sleep']);
    // The worker's sleep(5000) was stopped too: the pool is idle long before 5 s.
    const t1 = Date.now();
    await pool.idle();
    expect(Date.now() - t1).toBeLessThan(2000);
    expect(pool.stats().pool.running).toBe(0);
  });

  it('with timeoutMs resolves normally when the jobs are quick', { timeout: 10_000 }, async () => {
    const pool = makePool();
    pool.onSignal('quick', add);
    expect(await pool.signal('quick', { a: 20, b: 22 }, { timeoutMs: 5000 })).toEqual([42]);
  });

  it('an unknown signal is DIOCP_ERR_JOBS_UNKNOWN_SIGNAL at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.signal('nobody-listens', 1))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(codeOf(() => pool.postSignal('nobody-listens', 1))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(codeOf(() => pool.onSignal('x', { not: 'a job' } as never))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(codeOf(() => pool.onSignal('', add))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
  });

  it('a failing job rejects signal() with its error', { timeout: 10_000 }, async () => {
    const errors: Error[] = [];
    const pool = makePool({ onError: (_job, e) => errors.push(e) });
    pool.onSignal('bad', () => 'fine');
    pool.onSignal('bad', fail);
    const err = await rejection(pool.signal('bad', 'boom'));
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toBe('failed on purpose: boom');
    expect(err!.code).toBe('E_PURPOSE');
    expect(errors.map((e) => e.message)).toContain('failed on purpose: boom');

    // A throwing main-thread function rejects it too.
    pool.onSignal('bad-main', () => {
      throw new Error('main listener threw');
    });
    expect((await rejection(pool.signal('bad-main')))?.message).toBe('main listener threw');
  });
});

describe('postSignal', () => {
  it('is serial: a firing starts only after the previous one finished; results resolve in order', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const log: string[] = [];
    pool.onSignal('serial', async (d: { a: number; ms: number }) => {
      log.push(`start ${d.a}`);
      await wait(d.ms);
      log.push(`end ${d.a}`);
      return d.a;
    });
    pool.onSignal('serial', sched_sigWork);
    const resolved: number[] = [];
    const ps = [1, 2, 3].map((a) =>
      pool.postSignal('serial', { a, ms: 40 }).then((r) => {
        resolved.push(a);
        return r as [number, WorkerOut];
      }),
    );
    const results = await Promise.all(ps);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
    expect(resolved).toEqual([1, 2, 3]);
    expect(results.map((r) => r[0])).toEqual([1, 2, 3]);
    expect(results.map((r) => r[1].a)).toEqual([1, 2, 3]);
    // The worker jobs of firing n+1 started after those of firing n had ended.
    for (let i = 1; i < 3; i++) expect(results[i]![1].start).toBeGreaterThanOrEqual(results[i - 1]![1].end);
  });

  it('different names do not wait for each other', { timeout: 10_000 }, async () => {
    const pool = makePool();
    const order: string[] = [];
    pool.onSignal('slowName', async () => {
      await wait(300);
      return 'slow';
    });
    pool.onSignal('fastName', () => 'fast');
    const slow = pool.postSignal('slowName').then((r) => (order.push('slow'), r));
    const t0 = Date.now();
    const fast = pool.postSignal('fastName').then((r) => (order.push('fast'), r));
    expect(await fast).toEqual(['fast']);
    expect(Date.now() - t0).toBeLessThan(250);
    expect(await slow).toEqual(['slow']);
    expect(order).toEqual(['fast', 'slow']);
  });

  it('a failed firing does not block the next one of the same name', { timeout: 10_000 }, async () => {
    const pool = makePool();
    pool.onSignal('flaky', (d: string) => {
      if (d === 'bad') throw new Error('bad firing');
      return d;
    });
    const first = pool.postSignal('flaky', 'bad');
    const second = pool.postSignal('flaky', 'good');
    expect((await rejection(first))?.message).toBe('bad firing');
    expect(await second).toEqual(['good']);
  });

  it('a queued firing whose timeout passes while it runs rejects DIOCP_ERR_JOBS_SIGNAL_TIMEOUT; the next still runs', { timeout: 10_000 }, async () => {
    const pool = makePool();
    pool.onSignal('t', async (ms: number, ctx: JobContext) => {
      await abortableWait(ms, ctx);
      return ms;
    });
    const a = pool.postSignal('t', 2000, { timeoutMs: 60 });
    const b = pool.postSignal('t', 10, { timeoutMs: 2000 });
    expect((await rejection(a))?.code).toBe('DIOCP_ERR_JOBS_SIGNAL_TIMEOUT');
    expect(await b).toEqual([10]);
  });
});

describe('clear({ signal })', () => {
  it('stops the signal listeners and cancels its queued jobs (they never run)', { timeout: 10_000 }, async () => {
    const ran: string[] = [];
    const pool = makePool({ maxThreads: 1, afterExecute: (job) => ran.push(job.name) });
    pool.onSignal('c', () => 'main');
    pool.onSignal('w', add);
    const busy = pool.post(sleep, 150);
    await wait(40);
    const fired = rejection(pool.signal('w', { a: 1, b: 1 })); // its worker job waits for the busy thread
    expect(pool.clear({ signal: 'w' })).toBe(1);
    expect((await fired)?.code).toBe('DIOCP_ERR_JOBS_CANCELLED');
    expect(pool.clear({ signal: 'c' })).toBe(0);
    expect(codeOf(() => pool.signal('c'))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(codeOf(() => pool.signal('w', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(await busy.result).toBe(150);
    await wait(50);
    expect(ran).toEqual(['sleep']);
    expect(pool.clear({ signal: 'never-registered' })).toBe(0);
  });

  it('does not cancel jobs of the same definition posted directly (not through the signal)', { timeout: 10_000 }, async () => {
    const pool = makePool({ maxThreads: 1 });
    pool.onSignal('w', add);
    const busy = pool.post(sleep, 100);
    await wait(40);
    const direct = pool.post(add, { a: 2, b: 2 }); // queued behind `busy`, not a signal job
    const fired = rejection(pool.signal('w', { a: 1, b: 1 }));
    const n = pool.clear({ signal: 'w' });
    expect((await fired)?.code).toBe('DIOCP_ERR_JOBS_CANCELLED');
    await busy.result;
    // Expected 4; a wrongly cancelled direct post shows up as its error code.
    expect(await direct.result.catch((e: { code?: string }) => e.code)).toBe(4);
    expect(n).toBe(1);
  });
});
