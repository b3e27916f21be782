/**
 * "Behaviour under failure": jobs that end or kill their thread, data and results that cannot
 * cross between threads, unknown jobs, and bad arguments (coded errors at the call).
 * Every wait is bounded, so a hang fails the test rather than the run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defineJob, JobError, type JobHandle, type JobPool } from '@diocp/jobs';
import * as J from './fixtures/jobs.mjs';
import { CHILD_IMPORTS, childRunner, DIST, rejection, until, usePools, useTmpDirs, wait as sleep, within } from './helpers.js';

const makePool = usePools();
const tmpDir = useTmpDirs('diocp-jobs-fail-');

/** The error `fn` throws synchronously (fails if it returns). */
function thrown(fn: () => unknown): any {
  try {
    const v = fn();
    if (v instanceof Promise) v.catch(() => {});
  } catch (e) {
    return e;
  }
  throw new Error('expected a synchronous throw');
}

/** Posts `n` adds with b = `b`; returns their handles. */
function adds(pool: JobPool, n: number, b: number): JobHandle<number>[] {
  return Array.from({ length: n }, (_, i) => pool.post(J.add, { a: i, b }));
}
async function expectAdds(hs: JobHandle<number>[], b: number, ms = 10_000): Promise<void> {
  const results = await within(Promise.all(hs.map((h) => h.result)), ms, `${hs.length} adds`);
  expect(results).toEqual(hs.map((_, i) => i + b));
}

/** The ids of the pool's threads: one slow job per thread, posted in separate ticks. */
async function threadIds(pool: JobPool, n: number): Promise<Set<number>> {
  const hs: JobHandle<number>[] = [];
  for (let i = 0; i < n; i++) {
    hs.push(pool.post(J.threadId, 150));
    await new Promise((r) => setImmediate(r));
  }
  return new Set(await within(Promise.all(hs.map((h) => h.result)), 5000, 'threadId jobs'));
}

/** Run `body` as an .mjs in a child node (pool and fixtures imported); SIGKILL it after `timeoutMs`. */
const runChild = childRunner(tmpDir, { prelude: CHILD_IMPORTS, timeoutMs: 8000 });

// ------------------------------------------------------------------------------------------

describe('a job that ends or kills its thread', () => {
  it('process.exit in a job rejects DIOCP_ERR_JOBS_PROCESS_EXIT; jobs around it resolve; the pool goes on', async () => {
    const errors: [string, string][] = [];
    const pool = makePool({ onError: (h, e) => errors.push([h.name, (e as JobError).code]) });
    const before = adds(pool, 10, 1);
    const ex = pool.post(J.exit, 3);
    const after = adds(pool, 10, 2);
    const err = await within(rejection(ex.result), 5000, 'the exit job');
    expect(err).toBeInstanceOf(JobError);
    expect(err.code).toBe('DIOCP_ERR_JOBS_PROCESS_EXIT');
    expect(err.message).toContain('process.exit(3)');
    expect(ex.state).toBe('failed');
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    expect(errors).toEqual([['exit', 'DIOCP_ERR_JOBS_PROCESS_EXIT']]);

    const ex0 = pool.post(J.exit, 0);
    expect((await within(rejection(ex0.result), 5000)).code).toBe('DIOCP_ERR_JOBS_PROCESS_EXIT');
    await expectAdds(adds(pool, 50, 7), 7);
    expect(pool.stats().jobs.exit).toMatchObject({ runs: 2, failures: 2 });
    expect(pool.stats().pool.threads).toBe(2);
  });

  it('process.exit after an await fails that job with a coded error; nothing else is lost', async () => {
    const pool = makePool();
    const before = adds(pool, 10, 1);
    const ex = pool.post(J.core_exitLater, 4);
    const after = adds(pool, 10, 2);
    const err = await within(rejection(ex.result), 5000, 'the exiting job');
    expect(['DIOCP_ERR_JOBS_PROCESS_EXIT', 'DIOCP_ERR_JOBS_THREAD_DIED']).toContain(err.code);
    expect(err.message).toMatch(/\b4\b/);
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    await until(() => pool.stats().pool.threads === 2, 5000, 'two threads again');
    await expectAdds(adds(pool, 50, 3), 3);
  });

  it('a job over resourceLimits rejects DIOCP_ERR_JOBS_THREAD_DIED; its thread is replaced; no other job is lost or hangs', async () => {
    const errors: [string, string][] = [];
    const pool = makePool({ maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 32 }, onError: (h, e) => errors.push([h.name, (e as JobError).code]) });
    const idsBefore = await threadIds(pool, 2);
    expect(idsBefore.size).toBe(2);

    const before = adds(pool, 50, 1);
    const hog = pool.post(J.hog, null);
    const after = adds(pool, 50, 2);
    const err = await within(rejection(hog.result), 10_000, 'the hog');
    expect(err).toBeInstanceOf(JobError);
    expect(err.code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    expect(err.message).toContain('hog');
    expect(hog.state).toBe('failed');
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    expect(errors).toEqual([['hog', 'DIOCP_ERR_JOBS_THREAD_DIED']]);

    // Replaced: back to two threads, one of them new.
    await until(() => pool.stats().pool.threads === 2, 5000, 'two threads again');
    const idsAfter = await threadIds(pool, 2);
    expect(idsAfter.size).toBe(2);
    expect([...idsAfter].some((id) => !idsBefore.has(id))).toBe(true);
    await expectAdds(adds(pool, 200, 9), 9);
    expect(pool.stats().jobs.hog).toMatchObject({ runs: 1, failures: 1 });
  }, 20_000);

  it('every thread dying at once loses nothing', async () => {
    const pool = makePool({ maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    const a = adds(pool, 20, 1);
    const hogs = [pool.post(J.hog, null), pool.post(J.hog, null)];
    const b = adds(pool, 20, 2);
    for (const h of hogs) expect((await within(rejection(h.result), 10_000, 'a hog')).code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    await expectAdds(a, 1);
    await expectAdds(b, 2);

    const one = makePool({ maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    const c = adds(one, 5, 1);
    const hog = one.post(J.hog, null);
    const d = adds(one, 5, 2);
    expect((await within(rejection(hog.result), 10_000, 'the hog')).code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    await expectAdds(c, 1);
    await expectAdds(d, 2);
    await expectAdds(adds(one, 20, 3), 3);
  }, 20_000);

  it('a crash (uncaught exception in a job) rejects DIOCP_ERR_JOBS_THREAD_DIED; jobs around it resolve', async () => {
    const pool = makePool();
    const before = adds(pool, 20, 1);
    const crash = pool.post(J.core_crash, 500);
    const after = adds(pool, 20, 2);
    const err = await within(rejection(crash.result), 5000, 'the crashing job');
    expect(err.code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    expect(err.message).toContain('crash in a timer');
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    await until(() => pool.stats().pool.threads === 2, 5000, 'two threads again');
    await expectAdds(adds(pool, 20, 3), 3);
  });

  it('idle() does not resolve while jobs of a dead thread\'s batch wait to run again', async () => {
    const pool = makePool({ maxThreads: 1 });
    // One tick, one thread: one batch [add, add, crash]; the adds finish, the crash kills the
    // thread, the adds' results die with it and they are re-posted (at-least-once).
    const a = pool.post(J.add, { a: 1, b: 1 });
    const b = pool.post(J.add, { a: 2, b: 2 });
    const crash = pool.post(J.core_crash, 50);
    await within(pool.idle(), 5000, 'idle()');
    expect({ a: a.state, b: b.state, crash: crash.state, queued: pool.stats().pool.queued }).toEqual({ a: 'done', b: 'done', crash: 'failed', queued: 0 });
    expect(await within(Promise.all([a.result, b.result]), 5000)).toEqual([2, 4]);
  });

  // In a child process: when this goes wrong the pool can spin in microtasks, which starves
  // the event loop, so no timer in this process could end the test.
  it('close() after a thread died under a batch finishes the re-posted jobs and the process exits (child process)', async () => {
    const run = await runChild(`
const pool = createJobPool({ maxThreads: 1 });
const hs = [pool.post(J.add, { a: 1, b: 1 }), pool.post(J.add, { a: 2, b: 2 })];
const crash = pool.post(J.core_crash, 50);
await pool.close();
console.log(JSON.stringify({ adds: await Promise.all(hs.map((h) => h.result)), crash: await crash.result.catch((e) => e.code) }));
console.log('CLOSED');
`, 5000);
    expect(run.timedOut, `child hung (killed after 5 s); stdout: ${run.stdout} stderr: ${run.stderr}`).toBe(false);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout.split('\n')[0]!)).toEqual({ adds: [2, 4], crash: 'DIOCP_ERR_JOBS_THREAD_DIED' });
    expect(run.exitAfterClose!).toBeLessThan(2000);
  }, 15_000);

  it('close() right after thread-killing jobs (hog, crash) among many others finishes every other job, then stops (child process, 5 rounds)', async () => {
    const run = await runChild(`
for (let round = 0; round < 5; round++) {
  const pool = createJobPool({ maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 32 } });
  const a = [], b = [];
  for (let i = 0; i < 30; i++) a.push(pool.post(J.add, { a: i, b: 1 }));
  const hog = pool.post(J.hog, null);
  const crash = pool.post(J.core_crash, 100);
  for (let i = 0; i < 30; i++) b.push(pool.post(J.add, { a: i, b: 2 }));
  await pool.close();
  const ra = await Promise.all(a.map((h) => h.result));
  const rb = await Promise.all(b.map((h) => h.result));
  const ok = ra.every((v, i) => v === i + 1) && rb.every((v, i) => v === i + 2);
  console.log(JSON.stringify({ round, ok, hog: await hog.result.catch((e) => e.code), crash: await crash.result.catch((e) => e.code), threads: pool.stats().pool.threads }));
}
console.log('CLOSED');
`, 6000);
    expect(run.timedOut, `child hung (killed after 6 s); stdout: ${run.stdout} stderr: ${run.stderr}`).toBe(false);
    expect(run.code).toBe(0);
    const rounds = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(rounds).toEqual(
      [0, 1, 2, 3, 4].map((round) => ({ round, ok: true, hog: 'DIOCP_ERR_JOBS_THREAD_DIED', crash: 'DIOCP_ERR_JOBS_THREAD_DIED', threads: 0 })),
    );
    expect(run.exitAfterClose!).toBeLessThan(2000);
  }, 20_000);

  it('destroy() while a thread is dying settles every job without a hang', async () => {
    const pool = makePool({ maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    const hs: JobHandle<unknown>[] = [...adds(pool, 30, 1), pool.post(J.hog, null), pool.post(J.core_crash, 50), ...adds(pool, 30, 2)];
    await sleep(30);
    await within(pool.destroy(), 5000, 'destroy()');
    const settled = await within(Promise.allSettled(hs.map((h) => h.result)), 2000, 'all jobs');
    for (const r of settled) {
      if (r.status === 'rejected') expect(['DIOCP_ERR_JOBS_DESTROYED', 'DIOCP_ERR_JOBS_THREAD_DIED']).toContain((r.reason as JobError).code);
    }
    expect(hs.every((h) => ['done', 'failed', 'cancelled'].includes(h.state))).toBe(true);
  });

  it('a thread dying while idle is reported to onError and replaced; the process survives', async () => {
    const errors: [string, string][] = [];
    const pool = makePool({ onError: (h, e) => errors.push([h.name, (e as JobError).code]) });
    expect(await within(pool.post(J.core_timeBomb, 20).result, 5000)).toBe('armed');
    await until(() => errors.length > 0, 3000, 'onError for the dead thread');
    expect(errors[0]![1]).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    await until(() => pool.stats().pool.threads === 2, 5000, 'two threads again');
    await expectAdds(adds(pool, 100, 4), 4);
  });
});

describe('thread-death recovery options: retry, isolated, cancel({ force })', () => {
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').length - 1 : 0);

  it('a job that finished in a batch whose thread then died runs again by default; with retry: false it fails DIOCP_ERR_JOBS_THREAD_DIED and ran once', async () => {
    const pool = makePool({ maxThreads: 1 });
    const dir = tmpDir();
    // One tick, one thread: one batch [again, once, crash]; the crash kills the thread after
    // the two touches finished, before their results left it.
    const again = pool.post(J.core_touch, `${dir}/again`);
    const once = pool.post(J.core_touch, `${dir}/once`, { retry: false });
    const crash = pool.post(J.core_crash, 300);
    expect((await within(rejection(crash.result), 5000, 'the crash')).code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    const err = await within(rejection(once.result), 5000, 'the retry: false job');
    expect(err.code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    expect(lines(`${dir}/once`)).toBe(1);
    expect(await within(again.result, 5000, 'the retried job')).toBe(`${dir}/again`);
    expect(lines(`${dir}/again`)).toBeGreaterThanOrEqual(1);
    await expectAdds(adds(pool, 10, 1), 1);
  });

  it('an isolated job shares no batch: when it kills its thread, no job around it runs twice', async () => {
    const pool = makePool({ maxThreads: 1 });
    const dir = tmpDir();
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const before = names.slice(0, 3).map((n) => pool.post(J.core_touch, `${dir}/${n}`));
    const crash = pool.post(J.core_crash, 200, { isolated: true });
    const after = names.slice(3).map((n) => pool.post(J.core_touch, `${dir}/${n}`));
    expect((await within(rejection(crash.result), 5000, 'the crash')).code).toBe('DIOCP_ERR_JOBS_THREAD_DIED');
    await within(Promise.all([...before, ...after].map((h) => h.result)), 5000, 'the touches');
    expect(names.map((n) => lines(`${dir}/${n}`))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('cancel({ force: true }) ends a job stuck in a loop (its thread is replaced); jobs behind it run once', async () => {
    const pool = makePool({ maxThreads: 1 });
    const dir = tmpDir();
    await pool.post(J.add, { a: 0, b: 0 }).result;
    // Same tick: the touches wait behind the endless job in its batch.
    const stuck = pool.post(J.core_forever, null);
    const behind = ['x', 'y'].map((n) => pool.post(J.core_touch, `${dir}/${n}`));
    await sleep(100);
    const later = pool.post(J.add, { a: 2, b: 2 });
    expect(stuck.state).toBe('running');
    expect(stuck.cancel({ force: true })).toBe(true);
    expect((await within(rejection(stuck.result), 2000, 'the stuck job')).code).toBe('DIOCP_ERR_JOBS_CANCELLED');
    expect(await within(later.result, 5000, 'a job after the stuck one')).toBe(4);
    await within(Promise.all(behind.map((h) => h.result)), 5000, 'the jobs behind it');
    expect([lines(`${dir}/x`), lines(`${dir}/y`)]).toEqual([1, 1]);
    await until(() => pool.stats().pool.threads === 1, 5000, 'a thread again');
    await expectAdds(adds(pool, 20, 5), 5);
  });
});

// ------------------------------------------------------------------------------------------

describe('values that cannot cross between threads', () => {
  it('data that cannot be cloned rejects that job DIOCP_ERR_JOBS_BAD_ARGUMENT; jobs of the same tick resolve', async () => {
    const pool = makePool();
    const before = adds(pool, 10, 1);
    const bad = pool.post(J.add, { a: 1, b: 2, f: () => 3 } as any);
    const after = adds(pool, 10, 2);
    const err = await within(rejection(bad.result), 5000, 'the bad job');
    expect(err).toBeInstanceOf(JobError);
    expect(err.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(err.message).toContain('add');
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    await expectAdds(adds(pool, 10, 3), 3);
    // On the main thread nothing is cloned: the same data is fine there.
    expect(await pool.post(J.add, { a: 1, b: 2, f: () => 3 } as any, { mainThread: true }).result).toBe(3);
  });

  it('idle() does not resolve while a job batched with uncloneable data waits to be re-sent', async () => {
    const pool = makePool({ maxThreads: 1 });
    const good = pool.post(J.add, { a: 1, b: 1 });
    const bad = pool.post(J.add, { a: 1, b: 1, f: () => 1 } as any);
    await within(pool.idle(), 5000, 'idle()');
    expect({ good: good.state, bad: bad.state, queued: pool.stats().pool.queued }).toEqual({ good: 'done', bad: 'failed', queued: 0 });
    expect(await within(good.result, 5000)).toBe(2);
  });

  // In a child process: see the close() tests of thread deaths above.
  it('close() right after a post with uncloneable data finishes the other jobs and the process exits (child process)', async () => {
    const run = await runChild(`
const pool = createJobPool({ maxThreads: 1 });
const good = pool.post(J.add, { a: 1, b: 1 });
const bad = pool.post(J.add, { a: 1, b: 1, f: () => 1 });
await pool.close();
console.log(JSON.stringify({ good: await good.result, bad: await bad.result.catch((e) => e.code) }));
console.log('CLOSED');
`, 5000);
    expect(run.timedOut, `child hung (killed after 5 s); stdout: ${run.stdout} stderr: ${run.stderr}`).toBe(false);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout.split('\n')[0]!)).toEqual({ good: 2, bad: 'DIOCP_ERR_JOBS_BAD_ARGUMENT' });
    expect(run.exitAfterClose!).toBeLessThan(2000);
  }, 15_000);

  it('a result that cannot be cloned back rejects with a clear coded error, without a hang; the pool goes on', async () => {
    const errors: string[] = [];
    const pool = makePool({ onError: (h) => errors.push(h.name) });
    const before = adds(pool, 10, 1);
    const bad = pool.post(J.badResult, null);
    const sym = pool.post(J.core_symbolResult, null);
    const after = adds(pool, 10, 2);
    for (const h of [bad, sym]) {
      const err = await within(rejection(h.result), 5000, `${h.name}'s result`);
      expect(err).toBeInstanceOf(JobError);
      expect(err.code).toBe('DIOCP_ERR_JOBS_BAD_RESULT');
      expect(err.message).toContain(h.name);
      expect(err.message).toMatch(/cannot be sent back/);
      expect(h.state).toBe('failed');
    }
    await expectAdds(before, 1);
    await expectAdds(after, 2);
    expect(errors.sort()).toEqual(['badResult', 'core_symbolResult']);
    await expectAdds(adds(pool, 20, 3), 3);
    // It ran once: no endless re-runs of the failed batch.
    await sleep(50);
    expect(pool.stats().jobs.badResult).toMatchObject({ runs: 1, failures: 1 });
  });
});

// ------------------------------------------------------------------------------------------

describe('unknown jobs', () => {
  it('a job its module does not export rejects DIOCP_ERR_JOBS_UNKNOWN_JOB; the pool goes on', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'jobs-unexported.mjs');
    writeFileSync(
      file,
      `import { defineJob } from ${JSON.stringify(pathToFileURL(DIST).href)};
const hidden = defineJob(import.meta.url, 'hidden', () => 'hidden ran');
export const shown = defineJob(import.meta.url, 'shown', () => 'shown ran');
export function getHidden() { return hidden; }
`,
    );
    const mod = await import(/* @vite-ignore */ pathToFileURL(file).href);
    const pool = makePool();
    expect(await within(pool.post(mod.shown, null).result, 5000)).toBe('shown ran');

    const before = adds(pool, 5, 1);
    const h = pool.post(mod.getHidden(), null);
    const after = adds(pool, 5, 2);
    const err = await within(rejection(h.result), 5000, 'the unexported job');
    expect(err).toBeInstanceOf(JobError);
    expect(err.code).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(err.message).toContain('hidden');
    await expectAdds(before, 1);
    await expectAdds(after, 2);

    // A definition naming a job the module does not have.
    const missing = defineJob(pathToFileURL(file).href, 'missing', () => 0);
    const err2 = await within(rejection(pool.post(missing, null).result), 5000, 'the missing job');
    expect(err2.code).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(err2.message).toContain('missing');
    // Both threads still serve.
    await expectAdds(adds(pool, 50, 3), 3);
  });

  it('a job whose module does not exist rejects with a coded error naming the module; the pool goes on', async () => {
    const pool = makePool();
    const url = pathToFileURL(path.join(tmpDir(), 'no-such-module.mjs')).href;
    const ghost = defineJob(url, 'ghost', () => 0);
    const err = await within(rejection(pool.post(ghost, null).result), 5000, 'the ghost job');
    expect(typeof err.code).toBe('string');
    expect(err.message).toContain('no-such-module.mjs');
    await expectAdds(adds(pool, 20, 1), 1);
  });
});

// ------------------------------------------------------------------------------------------

describe('bad arguments: coded errors at the call', () => {
  const codeOf = (fn: () => unknown) => {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(JobError);
    return e.code as string;
  };

  it('posting something that is not a job throws DIOCP_ERR_JOBS_UNKNOWN_JOB', () => {
    const pool = makePool();
    for (const notAJob of [(d: any) => d, {}, null, undefined, 'add', { name: 'add', module: J.add.module, fn: J.add.fn }]) {
      expect(codeOf(() => pool.post(notAJob as any, 1))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
      expect(codeOf(() => pool.delay(notAJob as any, 10, 1))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    }
    expect(codeOf(() => pool.postMain(42 as any))).toBe('DIOCP_ERR_JOBS_UNKNOWN_JOB');
    expect(pool.stats().pool).toMatchObject({ queued: 0, scheduled: 0 });
  });

  it('bad options of a post throw DIOCP_ERR_JOBS_BAD_ARGUMENT', () => {
    const pool = makePool();
    const d = { a: 1, b: 1 };
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const options of [null, 5, 'x']) {
      const calls: Record<string, () => unknown> = {
        post: () => pool.post(J.add, d, options as any),
        delay: () => pool.delay(J.add, 10, d, options as any),
        at: () => pool.at(J.add, Date.now() + 1000, d, options as any),
        plan: () => pool.plan(J.add, '* * * * *', d, options as any),
      };
      for (const [name, call] of Object.entries(calls)) {
        const e = thrown(call);
        got[`${name}(…, ${JSON.stringify(options)})`] = `${e?.name}: ${e?.code}`;
        want[`${name}(…, ${JSON.stringify(options)})`] = 'JobError: DIOCP_ERR_JOBS_BAD_ARGUMENT';
      }
    }
    expect(got).toEqual(want);
    expect(pool.stats().pool).toMatchObject({ queued: 0, scheduled: 0 });
  });

  it('bad times throw DIOCP_ERR_JOBS_BAD_ARGUMENT: negative or non-finite delay, bad every, invalid at()', async () => {
    const pool = makePool();
    for (const ms of [-1, -0.5, NaN, Infinity, '5', null]) {
      expect(codeOf(() => pool.delay(J.add, ms as any, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
    for (const every of [NaN, 0, -5, Infinity, '10']) {
      expect(codeOf(() => pool.post(J.add, { a: 1, b: 1 }, { every: every as any }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
      expect(codeOf(() => pool.delay(J.add, 10, { a: 1, b: 1 }, { every: every as any }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
      expect(codeOf(() => pool.at(J.add, Date.now() + 1000, { a: 1, b: 1 }, { every: every as any }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
    for (const when of [new Date('not a date'), NaN, Infinity, 'tomorrow', undefined]) {
      expect(codeOf(() => pool.at(J.add, when as any, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
    const h = pool.post(J.add, { a: 1, b: 1 });
    expect(codeOf(() => pool.wait(h, -1))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(codeOf(() => pool.wait(h, NaN))).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    expect(await h.result).toBe(2);
    expect(pool.stats().pool).toMatchObject({ queued: 0, scheduled: 0 });
  });

  it('a bad cron expression throws DIOCP_ERR_JOBS_BAD_CRON', () => {
    const pool = makePool();
    for (const cron of ['not a cron', '* * *', '61 * * * *', '* * * * * * * *', '', 42, '0 0 30 2 *']) {
      expect(codeOf(() => pool.plan(J.add, cron as any, { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_BAD_CRON');
    }
    expect(pool.stats().pool).toMatchObject({ queued: 0, scheduled: 0 });
  });

  it('an unknown signal throws DIOCP_ERR_JOBS_UNKNOWN_SIGNAL at the call', () => {
    const pool = makePool();
    expect(codeOf(() => pool.signal('core-nobody-listens'))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    expect(codeOf(() => pool.postSignal('core-nobody-listens'))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
    const off = pool.onSignal('core-once', J.add);
    off();
    expect(codeOf(() => pool.signal('core-once', { a: 1, b: 1 }))).toBe('DIOCP_ERR_JOBS_UNKNOWN_SIGNAL');
  });

  it('defineJob checks its module URL, name and function', () => {
    for (const url of ['http://example.com/jobs.js', '/work/main/packages/jobs/test/fixtures/jobs.mjs', 'jobs.mjs', '', undefined, 42]) {
      const e = thrown(() => defineJob(url as any, 'x', () => 0));
      expect(e).toBeInstanceOf(JobError);
      expect(e.code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
    for (const name of ['', 'two words', '1abc', 'a/b', 42, undefined]) {
      expect(thrown(() => defineJob(import.meta.url, name as any, () => 0)).code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
    for (const fn of [undefined, 42, 'x => x', {}]) {
      expect(thrown(() => defineJob(import.meta.url, 'core_ok', fn as any)).code).toBe('DIOCP_ERR_JOBS_BAD_ARGUMENT');
    }
  });

  it('maxQueue exceeded throws DIOCP_ERR_JOBS_QUEUE_FULL at the call; the queued jobs still run', async () => {
    const pool = makePool({ maxQueue: 3 });
    pool.pause();
    const hs = [pool.post(J.add, { a: 1, b: 1 }), pool.post(J.add, { a: 2, b: 2 }), pool.postMain(() => 'm')];
    expect(codeOf(() => pool.post(J.add, { a: 3, b: 3 }))).toBe('DIOCP_ERR_JOBS_QUEUE_FULL');
    expect(codeOf(() => pool.postMain(() => 'n'))).toBe('DIOCP_ERR_JOBS_QUEUE_FULL');
    expect(pool.stats().pool.queued).toBe(3);
    // A cancelled job frees its place.
    expect(hs[0]!.cancel()).toBe(true);
    const again = pool.post(J.add, { a: 4, b: 4 });
    expect(codeOf(() => pool.post(J.add, { a: 5, b: 5 }))).toBe('DIOCP_ERR_JOBS_QUEUE_FULL');
    pool.resume();
    expect(await within(Promise.all([hs[1]!.result, hs[2]!.result, again.result]), 5000)).toEqual([4, 'm', 8]);
    expect(await within(pool.post(J.add, { a: 6, b: 6 }).result, 5000)).toBe(12);
  });

  it('after the bad calls above a pool is still idle and usable', async () => {
    const pool = makePool();
    thrown(() => pool.post({} as any, 1));
    thrown(() => pool.delay(J.add, -1, { a: 1, b: 1 }));
    thrown(() => pool.plan(J.add, 'nope', { a: 1, b: 1 }));
    thrown(() => pool.at(J.add, NaN, { a: 1, b: 1 }));
    await within(pool.idle(), 1000, 'idle()');
    await expectAdds(adds(pool, 10, 1), 1);
    expect(pool.stats().pool).toMatchObject({ queued: 0, scheduled: 0, running: 0, completed: 10 });
  });
});

describe('a job defined in the program entry module', () => {
  it('fails with DIOCP_ERR_JOBS_UNKNOWN_JOB instead of starting the program again in every thread', async () => {
    // The child's entry module defines and posts its own job: a thread importing it would
    // create a pool, which starts threads, which import it... The pool refuses instead.
    const r = await runChild(
      `import { defineJob } from ${JSON.stringify(DIST)};
export const twice = defineJob(import.meta.url, 'twice', (n) => n * 2);
const pool = createJobPool({ maxThreads: 1 });
const err = await pool.post(twice, 2).result.catch((e) => e);
console.log('CODE', err.code, String(err.message).includes('entry module'));
await pool.close();
console.log('CLOSED');
`,
      10_000,
    );
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toContain('CODE DIOCP_ERR_JOBS_UNKNOWN_JOB true');
    expect(r.code).toBe(0);
  });
});
