/**
 * "Behaviour under failure": jobs that end or kill their thread, data and results that cannot
 * cross between threads, unknown jobs, and bad arguments (coded errors at the call).
 * Every wait is bounded, so a hang fails the test rather than the run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createJobPool, defineJob, JobError, type JobHandle, type JobPool, type JobPoolOptions } from '@diocp/jobs';
import * as J from './fixtures/jobs.mjs';

const DIST = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/index.js');

const pools: JobPool[] = [];
function makePool(options: JobPoolOptions = {}): JobPool {
  const p = createJobPool({ maxThreads: 2, ...options });
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
});

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'diocp-jobs-fail-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<any> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

function within<T>(p: Promise<T>, ms: number, what = 'the operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await sleep(5);
  }
}

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
