// Jobs for bench/jobs.mjs. Plain JavaScript: worker threads load this very file (Node 20
// threads cannot load TypeScript), and so does the bench, which posts its definitions.
//
// - `add`, `spin`: @diocp/jobs job definitions (found by the pool's threads by module URL + name).
// - the default export: the same work as a bare piscina task function, for the baseline
//   (`new Piscina({ filename: <this file> })`). Task shape: { a, b } adds, { spinMs } spins.
import { defineJob } from '@diocp/jobs';

/** A tiny job: add two numbers. */
export const add = defineJob(import.meta.url, 'add', (d) => d.a + d.b);

/** A CPU-heavy job: busy-loop for `ms` milliseconds; returns the loop count. */
export const spin = defineJob(import.meta.url, 'spin', (ms) => busy(ms));

function busy(ms) {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n;
}

/** Bare piscina baseline: the same two jobs as one task function. */
export default function task(t) {
  return t.spinMs === undefined ? t.a + t.b : busy(t.spinMs);
}
