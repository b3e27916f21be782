/**
 * Helpers shared by the @diocp/jobs tests: pools and temporary directories destroyed after
 * each test / file (through use* functions that register the hooks in the calling file),
 * bounded waits, error probes, and child node processes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { createJobPool, type JobPool, type JobPoolOptions } from '@diocp/jobs';

/** The built package, as a path (children and entry modules import it). */
export const DIST = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/index.js');
/** The job fixtures, as a path. */
export const FIXTURES = new URL('./fixtures/jobs.mjs', import.meta.url).pathname;

/**
 * Returns `makePool`, which creates a pool (maxThreads 2 unless `options` say otherwise) that
 * is destroyed after the test; registers that afterEach hook. `beforeDestroy` runs first in it.
 */
export function usePools(hooks: { beforeDestroy?: () => void } = {}): (options?: JobPoolOptions) => JobPool {
  const pools: JobPool[] = [];
  afterEach(async () => {
    hooks.beforeDestroy?.();
    await Promise.all(pools.splice(0).map((p) => p.destroy()));
  });
  return (options: JobPoolOptions = {}): JobPool => {
    const pool = createJobPool({ maxThreads: 2, ...options });
    pools.push(pool);
    return pool;
  };
}

/** Returns `tmpDir`, which makes a new directory `<os tmpdir>/<prefix>XXXXXX`; all are removed after the file. */
export function useTmpDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

export const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll until `cond` holds (fails after `ms`). */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await wait(5);
  }
}

/** `p`, or a failure after `ms` (so a hang fails the test instead of timing it out). */
export function within<T>(p: Promise<T>, ms: number, what = 'the operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

/** The rejection reason of `p` (fails if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

/** The error code of a synchronous throw, or undefined. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** ms from the child printing "CLOSED" to its exit. */
  exitAfterClose: number | null;
}

/** What a child script starts with to get `createJobPool` (from dist) and the fixtures as `J`. */
export const CHILD_IMPORTS = `import { createJobPool } from ${JSON.stringify(DIST)};\nimport * as J from ${JSON.stringify(FIXTURES)};\n`;

/**
 * Returns `runChild(body, timeoutMs?)`: writes `prelude + body` as child.mjs into a new
 * `tmpDir()`, runs it in a child node and SIGKILLs it (timedOut) after `timeoutMs`.
 */
export function childRunner(tmpDir: () => string, defaults: { prelude?: string; timeoutMs: number }) {
  return (body: string, timeoutMs = defaults.timeoutMs): Promise<ChildRun> => {
    const file = path.join(tmpDir(), 'child.mjs');
    writeFileSync(file, `${defaults.prelude ?? ''}${body}`);
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let closedAt: number | null = null;
      let timedOut = false;
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        if (closedAt === null && stdout.includes('CLOSED')) closedAt = Date.now();
      });
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        const exitAfterClose = closedAt === null ? null : Date.now() - closedAt;
        // Let the pipes drain.
        setImmediate(() => resolve({ code, signal, stdout, stderr, timedOut, exitAfterClose }));
      });
    });
  };
}
