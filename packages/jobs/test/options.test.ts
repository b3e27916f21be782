/** resolveJobPoolOptions: defaults, and every bad value names its option. */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { createJobPool, JobError, jobPoolDefaults, resolveJobPoolOptions, type JobPoolOptions } from '@diocp/jobs';

/** The error resolveJobPoolOptions throws for `options` (fails if it does not throw). */
function badOption(options: unknown): JobError {
  try {
    resolveJobPoolOptions(options as JobPoolOptions);
  } catch (e) {
    expect(e).toBeInstanceOf(JobError);
    expect((e as JobError).code).toBe('DIOCP_ERR_JOBS_BAD_OPTION');
    return e as JobError;
  }
  throw new Error(`expected ${String(JSON.stringify(options))} to be refused`);
}

describe('resolveJobPoolOptions', () => {
  it('fills defaults: threads = available parallelism, no churn, share 0.5, large queue', () => {
    const cores = Math.max(1, os.availableParallelism());
    expect(jobPoolDefaults).toMatchObject({ maxThreads: cores, idleTimeoutMs: 60_000, longRunningShare: 0.5, maxQueue: 1_000_000 });
    const o = resolveJobPoolOptions();
    expect(o).toMatchObject({ maxThreads: cores, minThreads: cores, idleTimeoutMs: 60_000, longRunningShare: 0.5, maxQueue: 1_000_000 });
    expect(o.resourceLimits).toBeUndefined();
    for (const hook of ['onError', 'beforeExecute', 'afterExecute', 'beforeCancel'] as const) expect(o[hook]).toBeUndefined();
    expect(resolveJobPoolOptions({})).toEqual(o);
  });

  it('minThreads defaults to maxThreads (no thread churn)', () => {
    expect(resolveJobPoolOptions({ maxThreads: 3 })).toMatchObject({ minThreads: 3, maxThreads: 3 });
    expect(resolveJobPoolOptions({ maxThreads: 1 })).toMatchObject({ minThreads: 1, maxThreads: 1 });
  });

  it('keeps given values, hooks and resourceLimits', () => {
    const onError = () => {};
    const beforeExecute = () => {};
    const afterExecute = () => {};
    const beforeCancel = () => {};
    const o = resolveJobPoolOptions({
      minThreads: 0,
      maxThreads: 4,
      idleTimeoutMs: 0,
      longRunningShare: 1,
      maxQueue: 1,
      resourceLimits: { maxOldGenerationSizeMb: 64 },
      onError,
      beforeExecute,
      afterExecute,
      beforeCancel,
    });
    expect(o).toMatchObject({ minThreads: 0, maxThreads: 4, idleTimeoutMs: 0, longRunningShare: 1, maxQueue: 1, resourceLimits: { maxOldGenerationSizeMb: 64 } });
    expect(o.onError).toBe(onError);
    expect(o.beforeExecute).toBe(beforeExecute);
    expect(o.afterExecute).toBe(afterExecute);
    expect(o.beforeCancel).toBe(beforeCancel);
    expect(resolveJobPoolOptions({ longRunningShare: 0.01 }).longRunningShare).toBe(0.01);
  });

  it('does not change the options object it is given', () => {
    const given = { maxThreads: 2 };
    resolveJobPoolOptions(given);
    expect(given).toEqual({ maxThreads: 2 });
  });

  it('minThreads > maxThreads names minThreads and both values', () => {
    const e = badOption({ minThreads: 3, maxThreads: 2 });
    expect(e.message).toContain('minThreads');
    expect(e.message).toContain('3');
    expect(e.message).toContain('2');
  });

  it.each([0, 2, -0.5, NaN, Infinity, '0.5'])('longRunningShare %s is refused, naming the option', (v) => {
    expect(badOption({ longRunningShare: v }).message).toContain('longRunningShare');
  });

  it.each([
    ['maxThreads', 0],
    ['maxThreads', -1],
    ['maxThreads', 1.5],
    ['maxThreads', NaN],
    ['maxThreads', '2'],
    ['maxThreads', 1025],
    ['minThreads', -1],
    ['minThreads', 0.5],
    ['minThreads', '1'],
    ['idleTimeoutMs', -1],
    ['idleTimeoutMs', 1.5],
    ['idleTimeoutMs', Infinity],
    ['idleTimeoutMs', '100'],
    ['maxQueue', 0],
    ['maxQueue', -10],
    ['maxQueue', 2.5],
    ['maxQueue', '10'],
    ['resourceLimits', null],
    ['resourceLimits', 32],
    ['resourceLimits', 'big'],
  ])('%s = %s is refused, naming the option', (key, v) => {
    const e = badOption({ maxThreads: key === 'minThreads' ? 2 : undefined, [key]: v });
    expect(e.message).toContain(key);
  });

  it.each(['onError', 'beforeExecute', 'afterExecute', 'beforeCancel'])('a non-function %s is refused, naming the hook', (hook) => {
    for (const v of [42, 'fn', {}, null, true]) expect(badOption({ [hook]: v }).message).toContain(hook);
  });

  it('an unknown key is refused, naming it (typos do not pass silently)', () => {
    for (const key of ['maxThread', 'threads', 'idleTimeout', 'onerror', 'long_running_share']) {
      expect(badOption({ [key]: 1 }).message).toContain(`"${key}"`);
    }
  });

  it('options that are not an object are refused', () => {
    for (const v of [null, 42, 'x', true]) expect(badOption(v).message).toContain('options');
  });

  it('createJobPool refuses bad options at the call, with the same error', () => {
    let err: any;
    try {
      createJobPool({ minThreads: 4, maxThreads: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JobError);
    expect(err.code).toBe('DIOCP_ERR_JOBS_BAD_OPTION');
    expect(err.message).toContain('minThreads');
    expect(() => createJobPool({ bogus: true } as any)).toThrow(/bogus/);
  });

  it('a pool reports its resolved options', async () => {
    const pool = createJobPool({ maxThreads: 1, longRunningShare: 1 });
    try {
      expect(pool.options).toMatchObject({ minThreads: 1, maxThreads: 1, longRunningShare: 1, idleTimeoutMs: 60_000, maxQueue: 1_000_000 });
    } finally {
      await pool.destroy();
    }
  });
});

