#!/usr/bin/env node
// @diocp/jobs benchmark: `node bench/jobs.mjs [--quick] [--runs N]` (after `npm run build`);
// `npm run bench` runs it after the echo benchmark (bench/run.mjs).
//
// In one process, on this machine, with the jobs of bench/jobs-tasks.mjs:
//   1. tiny jobs: 100,000 `add` jobs posted at once through pool.post (maxThreads 2), all
//      awaited, against 100,000 bare piscina.run calls on a plain Piscina with 2 threads and a
//      task function that adds two numbers. Runs alternate (jobs, bare, bare, jobs, ...), 3
//      each; the median jobs/s is reported, ratio = jobs ÷ bare (target >= 3x).
//   2. lone-job latency: one `add`, awaited, then a 2 ms pause, 1,000 times per pool,
//      interleaved; p50 / p99 in ms (target: at most 1 ms added over bare piscina).
//   3. CPU-heavy jobs: 400 x `spin` (2 ms busy loop) through a pool with maxThreads 1 and
//      with maxThreads = os.availableParallelism(); wall time and speed-up (bare piscina
//      with the same thread counts alongside).
// Prints a progress line before each measurement, then a Markdown table (machine, date),
// also written to bench/.build/jobs-last-run.md (+ raw numbers in jobs-last-run.json).
// Options:
//   --quick    20,000 tiny jobs, 1 run each, 100 latency samples, 100 CPU jobs
//   --runs N   runs per side for throughput and CPU (default 3; odd is best for a median)
// Exit status: 0, or 1 if a job returned a wrong result, the bench failed or hung.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { createJobPool } from '@diocp/jobs';
import { add, spin } from './jobs-tasks.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(benchDir, '.build');
const tasksFile = new URL('./jobs-tasks.mjs', import.meta.url).href;

// ---------------------------------------------------------------- options

function parseOptions(argv) {
  const o = { quick: false, runs: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 21);
      process.stdout.write(head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else {
      process.stderr.write(`bench/jobs: unknown argument ${a} (try --help)\n`);
      process.exit(2);
    }
  }
  o.runs ??= o.quick ? 1 : 3;
  if (!Number.isInteger(o.runs) || o.runs < 1 || o.runs > 20) {
    process.stderr.write('bench/jobs: --runs must be 1..20\n');
    process.exit(2);
  }
  o.tiny = o.quick ? 20_000 : 100_000;
  o.latencySamples = o.quick ? 100 : 1000;
  o.latencyGapMs = 2;
  o.cpuJobs = o.quick ? 100 : 400;
  o.cpuMs = 2;
  o.tinyThreads = 2;
  o.cores = Math.max(1, os.availableParallelism());
  return o;
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n) => n.toFixed(3);
const log = (s) => console.log(s);

/** Order of run r of two sides: a, b, b, a, a, b, ... */
const order = (r, a, b) => (r % 2 === 0 ? [a, b] : [b, a]);

function check(ok, what) {
  if (!ok) throw new Error(`wrong result: ${what}`);
}

// The two ways to run N tiny jobs. Both post everything first, then await everything.
async function tinyJobs(pool, n) {
  const results = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) results[i] = pool.post(add, { a: i, b: 1 }).result;
  const values = await Promise.all(results);
  const ms = performance.now() - t0;
  check(values[0] === 1 && values[n - 1] === n, `@diocp/jobs add returned ${values[0]}, ${values[n - 1]}`);
  return ms;
}

async function tinyBare(piscina, n) {
  const results = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) results[i] = piscina.run({ a: i, b: 1 });
  const values = await Promise.all(results);
  const ms = performance.now() - t0;
  check(values[0] === 1 && values[n - 1] === n, `piscina add returned ${values[0]}, ${values[n - 1]}`);
  return ms;
}

async function cpuJobs(pool, n, ms) {
  const results = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) results[i] = pool.post(spin, ms).result;
  const values = await Promise.all(results);
  const took = performance.now() - t0;
  check(values.every((v) => v > 0), '@diocp/jobs spin returned 0');
  return took;
}

async function cpuBare(piscina, n, ms) {
  const results = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) results[i] = piscina.run({ spinMs: ms });
  const values = await Promise.all(results);
  const took = performance.now() - t0;
  check(values.every((v) => v > 0), 'piscina spin returned 0');
  return took;
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    model: cpus[0]?.model?.trim() || 'unknown CPU',
    cores: Math.max(1, os.availableParallelism()),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadBefore: os.loadavg()[0],
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const m = machineInfo();
  log(`bench/jobs: ${m.model}, ${m.cores} cores, Node ${m.node}; ${fmtInt(o.tiny)} tiny jobs × ${o.runs} run(s) per side, ` +
    `${o.latencySamples} latency samples, ${o.cpuJobs} × ${o.cpuMs} ms CPU jobs`);

  const pools = []; // everything to close at the end
  const own = (p) => (pools.push(p), p);
  const jobs = own(createJobPool({ maxThreads: o.tinyThreads }));
  const bare = own(new Piscina({ filename: tasksFile, minThreads: o.tinyThreads, maxThreads: o.tinyThreads }));
  const res = { machine: m, options: o };

  try {
    // Warm-up: threads started, job module loaded, JIT warm, the pool's batcher has seen `add`.
    log('[warm-up] 2 threads each, 5,000 tiny jobs + 20 lone jobs per side ...');
    await tinyJobs(jobs, 5000);
    await tinyBare(bare, 5000);
    for (let i = 0; i < 20; i++) {
      await jobs.post(add, { a: i, b: i }).result;
      await bare.run({ a: i, b: i });
    }

    // 1. Throughput of tiny jobs.
    const tjobs = [];
    const tbare = [];
    let step = 0;
    const steps = o.runs * 2;
    for (let r = 0; r < o.runs; r++) {
      for (const side of order(r, 'jobs', 'bare')) {
        step++;
        const label = side === 'jobs' ? '@diocp/jobs pool.post' : 'bare piscina.run';
        log(`[tiny ${step}/${steps}] ${fmtInt(o.tiny)} × add through ${label}, ${o.tinyThreads} threads ...`);
        const ms = side === 'jobs' ? await tinyJobs(jobs, o.tiny) : await tinyBare(bare, o.tiny);
        const rate = (o.tiny / ms) * 1000;
        (side === 'jobs' ? tjobs : tbare).push(rate);
        log(`      ${fmtInt(rate)} jobs/s (${ms.toFixed(0)} ms)`);
      }
    }
    res.tiny = { jobs: tjobs, bare: tbare, jobsMedian: median(tjobs), bareMedian: median(tbare) };
    res.tiny.ratio = res.tiny.jobsMedian / res.tiny.bareMedian;

    // 2. Latency of a lone job, interleaved so noise hits both sides alike.
    log(`[latency] ${o.latencySamples} lone add jobs per side, one at a time, ${o.latencyGapMs} ms apart, interleaved ...`);
    const ljobs = [];
    const lbare = [];
    for (let i = 0; i < o.latencySamples; i++) {
      for (const side of order(i, 'jobs', 'bare')) {
        await sleep(o.latencyGapMs);
        const t0 = performance.now();
        const v = side === 'jobs' ? await jobs.post(add, { a: i, b: 2 }).result : await bare.run({ a: i, b: 2 });
        const ms = performance.now() - t0;
        check(v === i + 2, `lone add returned ${v}`);
        (side === 'jobs' ? ljobs : lbare).push(ms);
      }
    }
    res.latency = {
      jobs: { p50: percentile(ljobs, 50), p99: percentile(ljobs, 99), max: Math.max(...ljobs) },
      bare: { p50: percentile(lbare, 50), p99: percentile(lbare, 99), max: Math.max(...lbare) },
    };
    log(`      @diocp/jobs p50 ${fmtMs(res.latency.jobs.p50)} ms, p99 ${fmtMs(res.latency.jobs.p99)} ms; ` +
      `bare piscina p50 ${fmtMs(res.latency.bare.p50)} ms, p99 ${fmtMs(res.latency.bare.p99)} ms`);

    await jobs.close();
    await bare.close();

    // 3. CPU-heavy jobs: 1 thread vs every core.
    const counts = [...new Set([1, o.cores])];
    const cpu = {};
    for (const t of counts) {
      const p = own(createJobPool({ maxThreads: t }));
      const b = own(new Piscina({ filename: tasksFile, minThreads: t, maxThreads: t }));
      log(`[cpu warm-up] ${t} thread(s): ${4 * t} × spin per side ...`);
      await cpuJobs(p, 4 * t, o.cpuMs);
      await cpuBare(b, 4 * t, o.cpuMs);
      const pj = [];
      const pb = [];
      for (let r = 0; r < o.runs; r++) {
        for (const side of order(r, 'jobs', 'bare')) {
          const label = side === 'jobs' ? '@diocp/jobs pool.post' : 'bare piscina.run';
          log(`[cpu ${t} thread(s), run ${r + 1}/${o.runs}] ${o.cpuJobs} × spin ${o.cpuMs} ms through ${label} ...`);
          const ms = side === 'jobs' ? await cpuJobs(p, o.cpuJobs, o.cpuMs) : await cpuBare(b, o.cpuJobs, o.cpuMs);
          (side === 'jobs' ? pj : pb).push(ms);
          log(`      ${ms.toFixed(0)} ms`);
        }
      }
      cpu[t] = { jobs: pj, bare: pb, jobsMedian: median(pj), bareMedian: median(pb) };
      await p.close();
      await b.close();
    }
    res.cpu = cpu;
  } catch (err) {
    for (const p of pools) await p.destroy().catch(() => {});
    throw err;
  }

  report(res, o);
}

// ---------------------------------------------------------------- report

function report(res, o) {
  const { machine: m, tiny, latency: lat, cpu } = res;
  const one = cpu[1];
  const all = cpu[o.cores];
  const speedJobs = one.jobsMedian / all.jobsMedian;
  const speedBare = one.bareMedian / all.bareMedian;
  const added50 = lat.jobs.p50 - lat.bare.p50;
  const added99 = lat.jobs.p99 - lat.bare.p99;
  const signed = (x) => `${x >= 0 ? '+' : '−'}${fmtMs(Math.abs(x))} ms`;
  const yes = (ok) => (ok ? 'met' : '**not met**');
  const cpuRow = (t) => `${o.cpuJobs} × 2 ms CPU job, ${t} thread${t > 1 ? 's' : ''}: wall ms (median)`;
  const rows = [
    [`${fmtInt(o.tiny)} tiny jobs (add), ${o.tinyThreads} threads: jobs/s (median of ${o.runs})`, fmtInt(tiny.jobsMedian), fmtInt(tiny.bareMedian),
      `**${tiny.ratio.toFixed(2)}×**`, `≥ 3× (${yes(tiny.ratio >= 3)})`],
    ['lone job latency p50, ms', fmtMs(lat.jobs.p50), fmtMs(lat.bare.p50), signed(added50), `≤ +1 ms (${yes(added50 <= 1)})`],
    ['lone job latency p99, ms', fmtMs(lat.jobs.p99), fmtMs(lat.bare.p99), signed(added99), `≤ +1 ms (${yes(added99 <= 1)})`],
    [cpuRow(1), one.jobsMedian.toFixed(0), one.bareMedian.toFixed(0), `${(one.jobsMedian / one.bareMedian).toFixed(2)}× the time`, '—'],
  ];
  if (o.cores > 1) {
    rows.push([cpuRow(o.cores), all.jobsMedian.toFixed(0), all.bareMedian.toFixed(0), `${(all.jobsMedian / all.bareMedian).toFixed(2)}× the time`, '—']);
  }
  rows.push([`CPU jobs speed-up, ${o.cores} threads ÷ 1 thread`, `**${speedJobs.toFixed(2)}×**`, `${speedBare.toFixed(2)}×`, '—',
    `≈ ${o.cores}× (${yes(speedJobs >= 0.85 * o.cores)}: ≥ ${(0.85 * o.cores).toFixed(2)}×)`]);

  const head = ['measurement', '@diocp/jobs', 'bare piscina', '@diocp/jobs vs bare', 'target'];
  const md = [
    `| ${head.join(' | ')} |`,
    '|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  const machine = `${m.model}, ${m.cores} cores, Node ${m.node}, ${m.os}; ${m.date}`;
  // Other processes on the machine skew everything (the CPU rows most): say how busy it was.
  const load = `1-min load average ${m.loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after ` +
    `(the bench alone brings it towards ${Math.min(o.cores, o.tinyThreads + 1)}; more means other work was running)`;
  const settings =
    `tiny: ${fmtInt(o.tiny)} jobs posted at once then awaited, ${o.runs} run(s) per side alternated, median; ` +
    `latency: ${o.latencySamples} samples per side, ${o.latencyGapMs} ms apart, interleaved; ` +
    `CPU: ${o.cpuJobs} × ${o.cpuMs} ms busy loop posted at once, ${o.runs} run(s) per side alternated, median; ` +
    `bare piscina: piscina ${piscinaVersion()} defaults, minThreads = maxThreads`;
  const text = [
    `### @diocp/jobs benchmark (${m.date.slice(0, 10)})`,
    '',
    md,
    '',
    `- machine: ${machine}`,
    `- load: ${load}`,
    `- settings: ${settings}`,
    `- jobs: bench/jobs-tasks.mjs (\`add\`, \`spin\`; its default export is the bare piscina task)`,
    '',
  ].join('\n');

  console.log('');
  console.log(text);
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(path.join(buildDir, 'jobs-last-run.md'), text);
  fs.writeFileSync(path.join(buildDir, 'jobs-last-run.json'), JSON.stringify(res, null, 2) + '\n');
  console.log(`written: bench/.build/jobs-last-run.md`);
}

function piscinaVersion() {
  try {
    const pkg = new URL('../node_modules/piscina/package.json', import.meta.url);
    return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  } catch {
    return '?';
  }
}

// A hung pool must not hang the bench: give up after 10 minutes (unref'd: it never keeps the
// process alive by itself, so it only fires if something else does).
setTimeout(() => {
  process.stderr.write('bench/jobs: still running after 10 minutes (a job or a pool hangs); giving up\n');
  process.exit(1);
}, 600_000).unref();

main().then(
  () => {
    // Every pool is closed: the process should now exit by itself. If a thread or timer were
    // left behind it would not; say so instead of hanging.
    setTimeout(() => {
      process.stderr.write('bench/jobs: pools closed but the process is still alive after 10 s (a thread or timer was left behind)\n');
      process.exit(1);
    }, 10_000).unref();
  },
  (err) => {
    process.stderr.write(`bench/jobs: ${err.stack || err}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 10_000).unref();
  },
);
