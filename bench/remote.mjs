#!/usr/bin/env node
// Remote-dispatch benchmark: `node bench/remote.mjs [--quick]` after `npm run build`.
//
// Two parts, both on the example app (templates/default) through the diocp CLI, node:net transport:
//   echo      0x01, 64 B, 100 connections x 16 in flight (bench/loadgen.c), the same run:
//             --dispatch inline against --dispatch remote with two `diocp worker` processes,
//             order alternated per repeat. Reports req/s, p50/p99 and remote / inline
//             (target >= 0.35).
//   failover  remote mode, two workers, the same 100 x 16 loadgen load (its reply timeout raised
//             to 30 s, so a slow answer is not an error but a lost or failed one is). A probe
//             client in this process keeps PROBE_CONNECTIONS x PROBE_DEPTH echo requests in
//             flight and records each one's send and answer time. After a steady window,
//             one worker is killed with SIGKILL; the gateway's "worker lost" log line says
//             when it noticed. Definitions (also in docs/benchmarks.md):
//               caught         probe requests outstanding at the moment the gateway declared
//                              the worker lost (sent before, answered after): every request
//                              the dead worker held is among them, plus requests of the
//                              surviving worker that happened to be in flight then
//               added latency  a caught request's latency minus the steady-window probe p50
//               failover pause p99 of the added latency over the caught requests
//                              (target <= 3 x heartbeatMs)
//             plus the detection time (kill to "worker lost") and the worst latency of any probe
//             request sent after the kill. Then a fresh
//             worker is started, and the next trial kills one again.
// Options:
//   --quick             short runs (1 s echo measurement, 1 failover trial)
//   --repeat N          echo: N runs per mode, order alternated, median reported (default 3; --quick: 1)
//   --kills N           failover trials (default 3; --quick: 1)
//   --heartbeat-ms N    the gateway's dispatch.heartbeatMs (default: the config default)
//   --liveness N        the gateway's dispatch.liveness (default: the config default)
//   --part echo|failover  only that part (may be repeated)
//   --workers N         worker processes in remote mode (default 2)
//   --freeze            failover: SIGSTOP the worker instead of kill -9 (its connection stays
//                       open, so only missed heartbeats reveal it; it is killed afterwards)
// Output: markdown tables on stdout; JSON in bench/.build/remote.json. Exit 0 when it ran
// (targets missed are reported, not an error); 1 when a run failed (errors, lost requests).
// Env: CC (C compiler for loadgen), BENCH_DURATION_MS / BENCH_WARMUP_MS (echo part).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
const loadgenBin = path.join(buildDir, 'loadgen');
const templateDir = path.join(root, 'templates', 'default');
const coreDist = path.join(root, 'packages', 'core', 'dist', 'index.js');
const diocpBin = path.join(root, 'packages', 'core', 'bin', 'diocp.js');

const PAYLOAD = 64;
const COMMAND = 0x01;
const CONNECTIONS = 100;
const DEPTH = 16;
const RATIO_TARGET = 0.35;
const PAUSE_TARGET_HEARTBEATS = 3;
const PROBE_CONNECTIONS = 4;
const PROBE_DEPTH = 8;
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
// A failover answer may take up to liveness x heartbeat + a retry: not a loadgen error.
const FAILOVER_LOADGEN_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- options

function fail(msg, code = 2) {
  process.stderr.write(`bench/remote: ${msg}\n`);
  process.exit(code);
}

function parseOptions(argv) {
  const o = { quick: false, repeat: null, kills: null, heartbeatMs: null, liveness: null, parts: [], workers: 2, freeze: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : fail(`missing value for ${a}`));
    const int = (lo, hi) => {
      const v = val();
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) fail(`${a} must be an integer ${lo}..${hi}, got ${v}`);
      return n;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--repeat') o.repeat = int(1, 20);
    else if (a === '--kills') o.kills = int(1, 20);
    else if (a === '--heartbeat-ms') o.heartbeatMs = int(10, 60_000);
    else if (a === '--liveness') o.liveness = int(1, 100);
    else if (a === '--workers') o.workers = int(2, 16);
    else if (a === '--freeze') o.freeze = true;
    else if (a === '--part') {
      const p = val();
      if (p !== 'echo' && p !== 'failover') fail(`unknown part ${p} (echo, failover)`);
      o.parts.push(p);
    } else if (a === '--help' || a === '-h') {
      const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
      const head = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
      process.stdout.write(head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else fail(`unknown argument ${a} (try --help)`);
  }
  o.repeat ??= o.quick ? 1 : 3;
  o.kills ??= o.quick ? 1 : 3;
  if (o.parts.length === 0) o.parts = ['echo', 'failover'];
  const envMs = (name, dflt) => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 600_000) fail(`${name} must be an integer number of ms (1..600000)`);
    return n;
  };
  o.durationMs = envMs('BENCH_DURATION_MS', o.quick ? 1000 : 5000);
  o.warmupMs = envMs('BENCH_WARMUP_MS', o.quick ? 500 : 1000);
  o.steadyMs = o.quick ? 1500 : 3000;
  return o;
}

// ---------------------------------------------------------------- loadgen

// The same binary bench/run.mjs builds: bench/loadgen.c -> bench/.build/loadgen when newer.
function ensureLoadgen() {
  fs.mkdirSync(buildDir, { recursive: true });
  const src = path.join(benchDir, 'loadgen.c');
  let binTime = -1;
  try {
    binTime = fs.statSync(loadgenBin).mtimeMs;
  } catch {}
  if (binTime >= fs.statSync(src).mtimeMs) return;
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-std=c11', '-Wall', '-o', loadgenBin, src];
  console.log(`bench/remote: compiling loadgen: ${cc} ${args.map((a) => path.relative(root, a) || a).join(' ')}`);
  const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  if (r.error?.code === 'ENOENT') fail(`no C compiler: '${cc}' is not on PATH (set CC)`);
  if (r.error || r.status !== 0) fail(`compiling loadgen failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
}

function runLoadgen(port, { durationMs, warmupMs, timeoutMs }) {
  const args = ['--host', '127.0.0.1', '--port', String(port), '--connections', String(CONNECTIONS), '--depth', String(DEPTH),
    '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs), '--payload', String(PAYLOAD), '--command', String(COMMAND)];
  if (timeoutMs) args.push('--timeout-ms', String(timeoutMs));
  return new Promise((resolve, reject) => {
    const child = spawn(loadgenBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 2 || signal) return reject(new Error(`loadgen failed (${signal ?? `exit ${code}`}): ${err.trim()}`));
      try {
        const r = JSON.parse(out.trim().split('\n').pop());
        r.stderr = err.trim();
        resolve(r);
      } catch {
        reject(new Error(`loadgen printed no JSON: ${out.trim()} ${err.trim()}`));
      }
    });
  });
}

// ---------------------------------------------------------------- processes

const live = new Set();

function keepTail(limit) {
  let s = '';
  return {
    push(chunk) {
      s += chunk;
      if (s.length > limit) s = s.slice(s.length - limit);
    },
    get text() {
      return s;
    },
  };
}

/** `diocp <args>` in templates/default, stdout parsed as pino JSON lines. */
function startDiocp(args, what, logLevel = 'warn') {
  const child = spawn(process.execPath, [diocpBin, ...args], {
    cwd: templateDir,
    env: { ...process.env, LOG_LEVEL: logLevel },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = { child, what, out: keepTail(16_384), err: keepTail(16_384), lines: [], exit: null, waiters: new Set() };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    p.out.push(d);
    partial += d;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const l = JSON.parse(line);
        if (p.lines.length < 10_000) p.lines.push(l);
      } catch {}
    }
    for (const w of p.waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d) => p.err.push(d));
  p.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      p.exit = { code, signal };
      for (const w of p.waiters) w();
      resolve(p.exit);
    });
    child.on('error', (e) => {
      p.err.push(`spawn failed: ${e.message}\n`);
      p.exit = { code: null, signal: null };
      resolve(p.exit);
    });
  });
  live.add(p);
  return p;
}

function tail(p) {
  const t = (label, text) => (text.trim() ? `\n  ${label}:\n${text.trim().split('\n').slice(-30).map((l) => `    | ${l}`).join('\n')}` : '');
  return t('stderr', p.err.text) + t('stdout', p.out.text);
}

/** Wait for a log line of `p` matching `pred`. */
function waitForLine(p, pred, timeoutMs = START_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const hit = p.lines.find(pred);
      if (hit) return done(null, hit);
      if (p.exit) return done(new Error(`${p.what} exited (${p.exit.signal ?? `code ${p.exit.code}`}) before it was ready${tail(p)}`));
    };
    const timer = setTimeout(() => done(new Error(`${p.what} was not ready within ${timeoutMs / 1000} s${tail(p)}`)), timeoutMs);
    const done = (err, v) => {
      clearTimeout(timer);
      p.waiters.delete(check);
      err ? reject(err) : resolve(v);
    };
    p.waiters.add(check);
    check();
  });
}

async function stop(p) {
  if (!p.exit) {
    try {
      p.child.kill('SIGTERM');
    } catch {}
    const r = await Promise.race([p.exited, sleep(STOP_GRACE_MS).then(() => null)]);
    if (!r) {
      try {
        p.child.kill('SIGKILL');
      } catch {}
      await p.exited;
    }
  }
  live.delete(p);
}

function killAll() {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(p, port) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (p.exit) throw new Error(`${p.what} exited (${p.exit.signal ?? `code ${p.exit.code}`}) before listening${tail(p)}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const done = (v) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${p.what} did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s${tail(p)}`);
}

// ---------------------------------------------------------------- CPU accounting

// CPU time of a process (all its threads) from /proc, to see where a run's time goes.
const CLK_TCK = (() => {
  const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim());
  return n > 0 ? n : 100;
})();

function cpuTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

/** CPU % of each named process between `fromMs` and `toMs` from now (100 = one core). */
async function cpuDuring(procs, fromMs, toMs) {
  await sleep(fromMs);
  const t0 = performance.now();
  const a = procs.map(([, pid]) => cpuTicks(pid));
  await sleep(toMs - fromMs);
  const secs = (performance.now() - t0) / 1000;
  const out = {};
  procs.forEach(([name, pid], i) => {
    const b = cpuTicks(pid);
    out[name] = a[i] === null || b === null ? null : Math.round((100 * (b - a[i])) / CLK_TCK / secs);
  });
  return out;
}

// ---------------------------------------------------------------- setups

let core;

/** The gateway: inline, or remote with `workers` worker processes registered. */
async function startSetup(mode, { workers = 0, heartbeatMs = null, liveness = null } = {}) {
  const port = await freePort();
  const args = ['start', '--host', '127.0.0.1', '--port', String(port), '--transport', 'net', '--dispatch', mode];
  let bind = null;
  if (mode === 'remote') {
    bind = `tcp://127.0.0.1:${await freePort()}`;
    args.push('--bind', bind);
    if (heartbeatMs !== null || liveness !== null) args.push('--config', remoteConfigFile(heartbeatMs, liveness));
  }
  // info on the gateway: the bench reads its "worker joined" lines; nothing is logged per request.
  const gateway = startDiocp(args, `gateway (${mode})`, mode === 'remote' ? 'info' : 'warn');
  await waitForPort(gateway, port);
  const setup = { mode, port, bind, gateway, workers: [], workerSeq: 0 };
  for (let i = 0; i < workers; i++) setup.workers.push(startWorker(setup));
  await Promise.all(setup.workers.map((w) => workerReady(setup, w)));
  if (mode === 'remote') await probeOnce(port);
  return setup;
}

// A config file for --heartbeat-ms / --liveness: the template's handlers, remote dispatch with them.
function remoteConfigFile(heartbeatMs, liveness) {
  const dispatch = { mode: 'remote' };
  if (heartbeatMs !== null) dispatch.heartbeatMs = heartbeatMs;
  if (liveness !== null) dispatch.liveness = liveness;
  const file = path.join(buildDir, `remote-hb${heartbeatMs ?? 'default'}-l${liveness ?? 'default'}.config.json`);
  const config = { handlers: [path.join(templateDir, 'dist', 'handlers')], dispatch };
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

function startWorker(setup) {
  const n = ++setup.workerSeq;
  return startDiocp(['worker', '--connect', setup.bind, '--name', `bench-w${n}`], `worker ${n}`, 'info');
}

// Ready: the gateway logged that this worker joined (its name appears in the line).
function workerName(w) {
  return w.child.spawnargs[w.child.spawnargs.indexOf('--name') + 1];
}

async function workerReady(setup, w) {
  const name = workerName(w);
  await waitForLine(setup.gateway, (l) => l.worker === name && /worker ready/.test(String(l.msg)));
}

async function probeOnce(port) {
  const client = await core.connect({ host: '127.0.0.1', port, timeoutMs: 10_000 });
  try {
    const payload = Buffer.alloc(PAYLOAD, 7);
    const reply = await client.request(COMMAND, payload);
    if (!Buffer.from(reply).equals(payload)) throw new Error('echo reply differs from the request');
  } finally {
    await client.close();
  }
}

async function stopSetup(setup) {
  await Promise.all(setup.workers.map(stop));
  await stop(setup.gateway);
}

// ---------------------------------------------------------------- echo part

async function echoPart(o) {
  const runs = { inline: [], remote: [] };
  for (let rep = 0; rep < o.repeat; rep++) {
    const order = rep % 2 === 0 ? ['inline', 'remote'] : ['remote', 'inline'];
    for (const mode of order) {
      const setup = await startSetup(mode, { workers: mode === 'remote' ? o.workers : 0, heartbeatMs: o.heartbeatMs, liveness: o.liveness });
      try {
        const procs = [['gateway', setup.gateway.child.pid], ...setup.workers.map((w, i) => [`worker${i + 1}`, w.child.pid])];
        const cpu = cpuDuring(procs, o.warmupMs + 100, o.warmupMs + o.durationMs - 100);
        const r = await runLoadgen(setup.port, { durationMs: o.durationMs, warmupMs: o.warmupMs });
        r.cpu = await cpu;
        runs[mode].push(r);
        const cpuText = Object.entries(r.cpu).map(([k, v]) => `${k} ${v}%`).join(', ');
        console.log(`  echo ${mode} #${rep + 1}: ${r.rps} req/s, p50 ${r.p50_us} us, p99 ${r.p99_us} us, errors ${r.errors}; CPU ${cpuText}`);
      } finally {
        await stopSetup(setup);
      }
    }
  }
  // The median run per mode (the lower middle one for an even count): this machine is shared.
  const median = (list) => [...list].sort((a, b) => a.rps - b.rps)[Math.floor((list.length - 1) / 2)];
  const inline = median(runs.inline);
  const remote = median(runs.remote);
  // Each round ran both modes back to back: its ratio is the least disturbed by the machine's
  // other load drifting over the run.
  const roundRatios = runs.remote.map((r, i) => r.rps / runs.inline[i].rps);
  return { runs, inline, remote, ratio: remote.rps / inline.rps, roundRatios, target: RATIO_TARGET };
}

// ---------------------------------------------------------------- failover part

/** PROBE_CONNECTIONS x PROBE_DEPTH echo requests in flight; every send and answer time kept. */
function startProbe(port) {
  const sent = [];
  const answered = [];
  const failures = [];
  let stopping = false;
  const payload = Buffer.alloc(PAYLOAD, 0x5a);
  const clients = [];
  const loops = [];
  const ready = (async () => {
    for (let c = 0; c < PROBE_CONNECTIONS; c++) clients.push(await core.connect({ host: '127.0.0.1', port, timeoutMs: FAILOVER_LOADGEN_TIMEOUT_MS }));
    for (const client of clients) {
      for (let d = 0; d < PROBE_DEPTH; d++) {
        loops.push(
          (async () => {
            while (!stopping) {
              const i = sent.length;
              sent.push(performance.now());
              answered.push(NaN);
              try {
                const reply = await client.request(COMMAND, payload);
                answered[i] = performance.now();
                if (!Buffer.from(reply).equals(payload)) failures.push({ at: answered[i], error: 'echo reply differs' });
              } catch (err) {
                failures.push({ at: performance.now(), error: `${err.code ?? ''} ${err.message}`.trim() });
              }
            }
          })(),
        );
      }
    }
  })();
  return {
    ready,
    sent,
    answered,
    failures,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function failoverPart(o) {
  const heartbeatMs = o.heartbeatMs ?? core.configDefaults.remote?.heartbeatMs ?? 1000;
  const liveness = o.liveness ?? core.configDefaults.remote?.liveness ?? 3;
  const setup = await startSetup('remote', { workers: o.workers, heartbeatMs: o.heartbeatMs, liveness: o.liveness });
  const trials = [];
  try {
    for (let t = 0; t < o.kills; t++) {
      // loadgen: warmup, steady window, then the kill and enough time for every re-post.
      const postMs = liveness * heartbeatMs * 2 + 2000;
      const lg = runLoadgen(setup.port, { durationMs: o.steadyMs + postMs, warmupMs: 500, timeoutMs: FAILOVER_LOADGEN_TIMEOUT_MS });
      await sleep(500);
      const probe = startProbe(setup.port);
      await probe.ready;
      const steadyFrom = performance.now();
      await sleep(o.steadyMs);
      const victim = setup.workers.shift();
      const victimName = workerName(victim);
      const tKill = performance.now();
      const killEpoch = Date.now();
      victim.child.kill(o.freeze ? 'SIGSTOP' : 'SIGKILL');
      if (!o.freeze) await victim.exited;
      // The gateway's "worker lost" line (pino time: epoch ms) says when it noticed.
      const lostLine = await waitForLine(
        setup.gateway,
        (l) => l.worker === victimName && /worker lost/.test(String(l.msg)),
        FAILOVER_LOADGEN_TIMEOUT_MS,
      );
      if (o.freeze) {
        victim.child.kill('SIGKILL');
        await victim.exited;
      }
      live.delete(victim);
      const tLost = tKill + (lostLine.time - killEpoch);
      // Every probe request still open then must be answered before the probe stops.
      const open = () => {
        for (let i = 0; i < probe.sent.length; i++) if (probe.sent[i] < tLost && Number.isNaN(probe.answered[i])) return true;
        return false;
      };
      const deadline = performance.now() + FAILOVER_LOADGEN_TIMEOUT_MS;
      while (open() && performance.now() < deadline && probe.failures.length === 0) await sleep(20);
      await sleep(Math.max(0, tKill + postMs - 500 - performance.now()));
      await probe.stop();
      const load = await lg;

      const steady = [];
      for (let i = 0; i < probe.sent.length; i++) {
        if (probe.sent[i] >= steadyFrom && probe.answered[i] < tKill) steady.push(probe.answered[i] - probe.sent[i]);
      }
      steady.sort((a, b) => a - b);
      const p50 = percentile(steady, 50);
      const steadyMax = steady.length ? steady[steady.length - 1] : 0;
      // Caught: outstanding when the gateway declared the worker lost. The dead worker's
      // requests cannot be answered before that (they are re-posted then), so all of them are
      // here; so are the surviving worker's requests in flight at that moment, which only
      // lower the percentiles. (tLost has 1 ms resolution: pino's time.)
      const caughtIdx = [];
      let unanswered = 0;
      for (let i = 0; i < probe.sent.length; i++) {
        if (probe.sent[i] <= tLost && !(probe.answered[i] < tLost)) {
          if (Number.isNaN(probe.answered[i])) unanswered++;
          else caughtIdx.push(i);
        }
      }
      const caught = caughtIdx.map((i) => probe.answered[i] - probe.sent[i] - p50).sort((a, b) => a - b);
      const afterLost = caughtIdx.map((i) => probe.answered[i] - tLost).sort((a, b) => a - b);
      let worstAfter = 0;
      for (let i = 0; i < probe.sent.length; i++) {
        if (probe.sent[i] >= tKill && !Number.isNaN(probe.answered[i])) worstAfter = Math.max(worstAfter, probe.answered[i] - probe.sent[i] - p50);
      }
      const trial = {
        trial: t + 1,
        probeSteadyRequests: steady.length,
        steadyP50Ms: p50,
        steadyP99Ms: percentile(steady, 99),
        steadyMaxMs: steadyMax,
        detectMs: tLost - tKill,
        heldByLostWorker: lostLine.holding,
        caught: caughtIdx.length + unanswered,
        caughtUnanswered: unanswered,
        addedP50Ms: percentile(caught, 50),
        addedP99Ms: percentile(caught, 99),
        addedMaxMs: caught.length ? caught[caught.length - 1] : NaN,
        repostP50Ms: percentile(afterLost, 50),
        worstAfterKillMs: worstAfter,
        probeFailures: probe.failures.length,
        probeFailureSample: probe.failures.slice(0, 3),
        loadgen: { rps: load.rps, p99_us: load.p99_us, max_us: load.max_us, errors: load.errors, stderr: load.stderr || undefined },
      };
      console.log(
        `  failover #${t + 1}: detected after ${fmtMs(trial.detectMs)}, ${trial.caught} probe requests caught ` +
          `(${trial.heldByLostWorker} requests held by the worker in all), added latency p50 ${fmtMs(trial.addedP50Ms)} ` +
          `p99 ${fmtMs(trial.addedP99Ms)} max ${fmtMs(trial.addedMaxMs)} (steady p50 ${fmtMs(p50)}); ` +
          `probe failures ${trial.probeFailures}, loadgen errors ${load.errors}`,
      );
      trials.push(trial);
      // A fresh worker for the next trial (and so that two are running again).
      const fresh = startWorker(setup);
      setup.workers.push(fresh);
      await workerReady(setup, fresh);
    }
  } finally {
    await stopSetup(setup);
  }
  const all = [];
  for (const t of trials) all.push(t.addedP99Ms);
  const worstP99 = Math.max(...all);
  return { how: o.freeze ? 'SIGSTOP' : 'SIGKILL', heartbeatMs, liveness, targetMs: PAUSE_TARGET_HEARTBEATS * heartbeatMs, trials, worstP99Ms: worstP99 };
}

const fmtMs = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms` : 'n/a');

// ---------------------------------------------------------------- main

async function main() {
  const o = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(coreDist) || !fs.existsSync(path.join(templateDir, 'dist', 'handlers'))) {
    fail('packages/core/dist or templates/default/dist is missing: run `npm run build` first');
  }
  core = await import(pathToFileURL(coreDist).href);
  ensureLoadgen();
  const result = { date: new Date().toISOString(), quick: o.quick, node: process.version, payload: PAYLOAD, connections: CONNECTIONS, depth: DEPTH, workers: o.workers };
  let bad = false;
  result.loadAvgBefore = os.loadavg().map((x) => Number(x.toFixed(2)));
  console.log(`bench/remote: echo ${PAYLOAD} B, ${CONNECTIONS} x ${DEPTH}, ${o.workers} workers, node:net transport, not pinned; load average ${result.loadAvgBefore.join(' ')}`);
  if (o.parts.includes('echo')) {
    const e = await echoPart(o);
    result.echo = e;
    bad ||= [...e.runs.inline, ...e.runs.remote].some((r) => r.errors > 0);
  }
  if (o.parts.includes('failover')) {
    const f = await failoverPart(o);
    result.failover = f;
    bad ||= f.trials.some((t) => t.probeFailures > 0 || t.caughtUnanswered > 0 || t.loadgen.errors > 0);
  }
  result.loadAvgAfter = os.loadavg().map((x) => Number(x.toFixed(2)));
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(path.join(buildDir, 'remote.json'), JSON.stringify(result, null, 2) + '\n');
  printTables(result);
  console.log(`\nJSON: ${path.relative(root, path.join(buildDir, 'remote.json'))}`);
  process.exitCode = bad ? 1 : 0;
}

function printTables(r) {
  if (r.echo) {
    const { inline, remote, ratio } = r.echo;
    const us = (v) => `${(v / 1000).toFixed(2)} ms`;
    const every = (list) => list.map((x) => `${Math.round(x.rps / 1000)}k`).join(' / ');
    const cpu = (x) => Object.entries(x.cpu ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(`\n### Echo, ${PAYLOAD} B, ${CONNECTIONS} connections x ${DEPTH} in flight (median of ${r.echo.runs.inline.length} per mode)\n`);
    console.log('| dispatch | req/s | every run | p50 | p99 | errors | CPU % (median run) | ÷ inline |');
    console.log('|---|---:|---|---:|---:|---:|---|---:|');
    console.log(`| inline | ${inline.rps} | ${every(r.echo.runs.inline)} | ${us(inline.p50_us)} | ${us(inline.p99_us)} | ${inline.errors} | ${cpu(inline)} | 1.00 |`);
    console.log(`| remote, ${r.workers} worker processes | ${remote.rps} | ${every(r.echo.runs.remote)} | ${us(remote.p50_us)} | ${us(remote.p99_us)} | ${remote.errors} | ${cpu(remote)} | **${ratio.toFixed(2)}** (target ≥ ${RATIO_TARGET}: ${ratio >= RATIO_TARGET ? 'met' : 'MISSED'}) |`);
    console.log(`\nRatio per round (both modes back to back): ${r.echo.roundRatios.map((x) => x.toFixed(2)).join(' / ')}`);
  }
  if (r.failover) {
    const f = r.failover;
    console.log(`\n### Failover pause: ${f.how === 'SIGSTOP' ? 'SIGSTOP (frozen, connection open)' : 'kill -9'} of one of ${r.workers} workers under ${CONNECTIONS} x ${DEPTH} echo load (heartbeatMs ${f.heartbeatMs}, liveness ${f.liveness})\n`);
    console.log('Caught = probe requests outstanding when the gateway declared the worker lost (all the dead worker held, plus what the other had in flight then); added latency = latency − steady-state probe p50.\n');
    console.log('| trial | detected after | held by the dead worker (all clients) | caught (probe) | steady p50 | added p50 | added p99 | added max | failed / lost | loadgen errors |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of f.trials) {
      console.log(`| ${t.trial} | ${fmtMs(t.detectMs)} | ${t.heldByLostWorker} | ${t.caught} | ${fmtMs(t.steadyP50Ms)} | ${fmtMs(t.addedP50Ms)} | ${fmtMs(t.addedP99Ms)} | ${fmtMs(t.addedMaxMs)} | ${t.probeFailures} / ${t.caughtUnanswered} | ${t.loadgen.errors} |`);
    }
    const ok = f.worstP99Ms <= f.targetMs;
    console.log(`\nFailover pause (worst trial's added p99): **${fmtMs(f.worstP99Ms)}**, target ≤ 3 × heartbeat = ${f.targetMs} ms: ${ok ? 'met' : 'MISSED'}`);
  }
}

main().catch((err) => {
  console.error(`bench/remote: ${err.stack ?? err}`);
  killAll();
  process.exit(1);
});
