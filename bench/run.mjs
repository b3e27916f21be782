#!/usr/bin/env node
// diocp benchmark harness: `npm run bench` (= npm run build && node bench/run.mjs).
//
// Parts, each under load from bench/loadgen.c or bench/idle-conns.c (see bench/README.md):
//   echo  the example server (templates/default, diocp CLI, --dispatch inline) with the
//         node:net transport and with the native one, against a hand-written node:net echo
//         server (bench/baseline-echo.mjs) and a C epoll echo server (bench/epoll-echo.c,
//         the hardware reference): 0x01, 64 B, 100 connections x 16 and x 1 in flight
//   pool  the example server with --dispatch local-pool --threads N against the same
//         server with --dispatch inline: 0x01, 64 B, 100 connections x 16 in flight
//   ping  PING (0xFFFF) round trip on one extra connection, one at a time, every ~2 ms,
//         while 12 connections x 4 in flight send 0x05 {"ms":1} (1 ms of CPU each):
//         inline against local-pool
//   idle  15,000 idle connections (bench/idle-conns.c): server RSS growth per connection,
//         native and node:net transports (example server, inline), C epoll for reference
//   remote bench/remote.mjs in its own process: remote dispatch (two `diocp worker` processes)
//         against inline, echo 100 x 16, and the failover pause of a kill -9 (not pinned:
//         the gateway and the workers share the cores; BENCH_SKIP_REMOTE=1 skips it)
//   jobs  bench/jobs.mjs in its own process (BENCH_SKIP_JOBS=1 skips it)
// Pinning: with taskset (util-linux) and 2+ cores, loadgen / idle-conns run on core 0 and the
// server under test on core 1, in every part but remote and jobs (--no-pin: no pinning).
// Options:
//   --quick            1 s measurement per run (500 ms warmup)
//   --repeat N         N runs per server and scenario, order alternated
//   --pick best|median which run to report per server (default best)
//   --part NAME        echo, pool, ping, idle, remote or jobs: only this part; may be repeated (default: all)
//   --threads LIST     handler threads for local-pool, comma-separated (default 1,2: a row each)
//   --scenario NAME    echo part: only this scenario (100x16 or 100x1); may be repeated
//   --only LIST        echo part: only these servers, comma-separated, of
//                      baseline, framework (net transport), native, cepoll
//                      (--scenario / --only without --part: echo and jobs parts only)
//   --idle-connections N   idle part: connections to open (default 15000)
//   --no-pin           do not pin loadgen and the server to cores
//   --retry-noisy PCT  rerun (up to twice) a run during which other processes took more than
//                      PCT % CPU (machine minus softirqs, server, loadgen); the quietest is kept
// Env: BENCH_DURATION_MS, BENCH_WARMUP_MS (measurement / warmup time), BENCH_FRAMEWORK_CMD
//   (echo part only: replaces the framework command, "{port}" replaced by the port, cwd
//   BENCH_FRAMEWORK_CWD or the repo root), BENCH_SKIP_JOBS=1, CC (C compiler for loadgen)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
const loadgenSrc = path.join(benchDir, 'loadgen.c');
const loadgenBin = path.join(buildDir, 'loadgen');
const epollEchoBin = path.join(buildDir, 'epoll-echo');
const idleConnsBin = path.join(buildDir, 'idle-conns');
const templateDir = path.join(root, 'templates', 'default');

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const PAYLOAD = 64;
const COMMAND = 0x01;
const ECHO_ARGS = ['--payload', String(PAYLOAD), '--command', String(COMMAND)];
const SCENARIOS = [
  { part: 'echo', name: '100x16', connections: 100, depth: 16, args: ECHO_ARGS },
  { part: 'echo', name: '100x1', connections: 100, depth: 1, args: ECHO_ARGS },
];
const POOL_SCENARIO = { part: 'pool', name: 'pool-100x16', connections: 100, depth: 16, args: ECHO_ARGS };
// The CPU load of the ping part: 0x05 work requests, each burning about WORK_MS of CPU in the
// handler; the reply must be JSON starting with {"spun":. Plus one PING connection.
const WORK_COMMAND = 0x05;
const WORK_MS = 1;
const PING_INTERVAL_US = 2000;
const PING_TARGET_MS = 5;
const POOL_TARGET_RATIO = 0.5;
const PING_SCENARIO = {
  part: 'ping',
  name: 'ping-under-work',
  connections: 12,
  depth: 4,
  args: [
    '--command', String(WORK_COMMAND),
    '--payload-text', JSON.stringify({ ms: WORK_MS }),
    '--reply-prefix', '{"spun":',
    '--ping-interval-us', String(PING_INTERVAL_US),
  ],
};
const PARTS = ['echo', 'pool', 'ping', 'idle', 'remote', 'jobs'];
const ECHO_KINDS = ['baseline', 'framework', 'native', 'cepoll'];
const NATIVE_TARGET_RATIO = 1.5; // native ÷ baseline, echo
const IDLE_KINDS = ['idle-net', 'idle-native', 'idle-cepoll'];
const IDLE_TARGET_BYTES = 1024; // per idle connection, native
const IDLE_WARMUP_CONNECTIONS = 1000;
const IDLE_MAX_CONNECTIONS = 60_000;
// The server's open-file limit in the idle part (prlimit): the hard limit here is 20,000.
const IDLE_NOFILE = 20_000;
// Cores: loadgen on LOADGEN_CPU, the server under test on SERVER_CPU (taskset -c).
const LOADGEN_CPU = '0';
const SERVER_CPU = '1';

// ---------------------------------------------------------------- options

function fail(msg, code = 2) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(code);
}

function parseOptions(argv) {
  const o = { quick: false, repeat: 1, pick: 'best', scenarios: [], only: null, parts: [], threads: [1, 2], pin: true, idleConnections: 15_000, retryNoisy: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) fail(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--repeat') o.repeat = Number(val());
    else if (a === '--pick') o.pick = val();
    else if (a === '--scenario') o.scenarios.push(val());
    else if (a === '--only') o.only = val().split(',').map((x) => x.trim()).filter(Boolean);
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--retry-noisy') o.retryNoisy = Number(val());
    else if (a === '--idle-connections') o.idleConnections = Number(val());
    else if (a === '--part') o.parts.push(val());
    else if (a === '--threads') o.threads = val().split(',').map((s) => Number(s.trim()));
    else if (a === '--help' || a === '-h') {
      const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
      const head = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
      process.stdout.write(head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else fail(`unknown argument ${a} (try --help)`);
  }
  if (!Number.isInteger(o.repeat) || o.repeat < 1 || o.repeat > 20) fail('--repeat must be 1..20');
  if (!['best', 'median'].includes(o.pick)) fail('--pick must be best or median');
  if (o.only && (o.only.length === 0 || o.only.some((k) => !ECHO_KINDS.includes(k)))) fail(`--only takes a comma-separated list of ${ECHO_KINDS.join(', ')}`);
  if (o.retryNoisy !== null && !(o.retryNoisy >= 0 && o.retryNoisy <= 200)) fail('--retry-noisy must be a CPU percentage 0..200');
  if (!Number.isInteger(o.idleConnections) || o.idleConnections < 1 || o.idleConnections > 60_000) fail('--idle-connections must be an integer 1..60000');
  for (const s of o.scenarios) {
    if (!SCENARIOS.some((x) => x.name === s)) fail(`unknown scenario ${s} (${SCENARIOS.map((x) => x.name).join(', ')})`);
  }
  for (const p of o.parts) if (!PARTS.includes(p)) fail(`unknown part ${p} (${PARTS.join(', ')})`);
  // --scenario / --only are about the echo part: without --part they select it alone (+ jobs).
  if (o.parts.length === 0) o.parts = o.scenarios.length || o.only ? ['echo', 'jobs'] : [...PARTS];
  if (o.threads.length === 0 || o.threads.some((t) => !Number.isInteger(t) || t < 1 || t > 64)) fail('--threads must be a comma-separated list of integers 1..64');
  o.threads = [...new Set(o.threads)];
  const envMs = (name, dflt) => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 600_000) fail(`${name} must be an integer number of ms (0..600000)`);
    return n;
  };
  o.durationMs = envMs('BENCH_DURATION_MS', o.quick ? 1000 : 5000);
  o.warmupMs = envMs('BENCH_WARMUP_MS', o.quick ? 500 : 1000);
  if (o.durationMs < 1) fail('BENCH_DURATION_MS must be at least 1');
  return o;
}

// ---------------------------------------------------------------- loadgen build

// bench/<name>.c -> bench/.build/<name>, rebuilt when the source is newer (cc -O2).
function ensureBinary(name, bin) {
  fs.mkdirSync(buildDir, { recursive: true });
  const src = path.join(benchDir, `${name}.c`);
  const srcTime = fs.statSync(src).mtimeMs;
  let binTime = -1;
  try {
    binTime = fs.statSync(bin).mtimeMs;
  } catch {}
  if (binTime >= srcTime) return;
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-std=c11', '-Wall', '-o', bin, src];
  console.log(`bench: compiling ${name}: ${cc} ${args.map((a) => path.relative(root, a) || a).join(' ')}`);
  const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  if (r.error && r.error.code === 'ENOENT') {
    fail(`no C compiler found: '${cc}' is not on PATH. Install one (Debian: apt-get install gcc) or set CC.`);
  }
  if (r.error) fail(`compiling ${name} failed: ${r.error.message}`);
  if (r.status !== 0) fail(`compiling ${name} failed (${cc} exited with ${r.status ?? r.signal})`);
}

function ensureBinaries() {
  ensureBinary('loadgen', loadgenBin);
  ensureBinary('epoll-echo', epollEchoBin);
  ensureBinary('idle-conns', idleConnsBin);
}

// ---------------------------------------------------------------- pinning

// taskset (util-linux) pins the load generator to LOADGEN_CPU and the server to SERVER_CPU,
// so that they do not fight over one core while the other idles. Needs 2+ cores we may use.
function detectPinning(want) {
  if (!want) return { on: false, why: 'not pinned (--no-pin)' };
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (cores < 2) return { on: false, why: `not pinned: only ${cores} core available` };
  const r = spawnSync('taskset', ['-c', LOADGEN_CPU, 'true'], { stdio: 'ignore', timeout: 5000 });
  if (r.error && r.error.code === 'ENOENT') return { on: false, why: 'not pinned: taskset (util-linux) is not installed' };
  if (r.error || r.status !== 0) return { on: false, why: `not pinned: taskset -c ${LOADGEN_CPU} true failed (${r.error?.message ?? `exit code ${r.status}`})` };
  const r2 = spawnSync('taskset', ['-c', SERVER_CPU, 'true'], { stdio: 'ignore', timeout: 5000 });
  if (r2.error || r2.status !== 0) return { on: false, why: `not pinned: taskset -c ${SERVER_CPU} true failed` };
  return { on: true, why: `pinned with taskset: load generator on core ${LOADGEN_CPU}, server under test on core ${SERVER_CPU}` };
}

let pinning = { on: false, why: 'not pinned' };

/** The command, run on `cpu` when pinning is on (taskset execs it: same pid). */
function pinned(cmd, args, cpu) {
  return pinning.on ? { cmd: 'taskset', args: ['-c', cpu, cmd, ...args] } : { cmd, args };
}

// ---------------------------------------------------------------- servers

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Server kinds: 'baseline' (hand-written echo), 'framework' (the echo part's framework,
// inline dispatch, BENCH_FRAMEWORK_CMD may replace it), 'inline' and 'pool<N>' (the
// example server via the CLI with --dispatch inline / local-pool --threads N; pool and
// ping parts, never replaced).
function kindLabel(kind) {
  if (kind === 'framework') return 'framework, net transport (inline)';
  if (kind === 'native') return 'framework, native transport (inline)';
  if (kind === 'cepoll') return 'C epoll echo';
  if (kind === 'idle-net') return 'framework, net transport';
  if (kind === 'idle-native') return 'framework, native transport';
  if (kind === 'idle-cepoll') return 'C epoll echo';
  if (kind.startsWith('pool')) return `local-pool, ${kind.slice(4)} thread${kind.slice(4) === '1' ? '' : 's'}`;
  return kind;
}

function frameworkCommand(port, dispatch = 'inline', threads = null, allowOverride = true, transport = 'net', extra = []) {
  const override = process.env.BENCH_FRAMEWORK_CMD;
  if (allowOverride && override && override.trim()) {
    let parts = override.trim().split(/\s+/);
    if (parts.some((p) => p.includes('{port}'))) parts = parts.map((p) => p.replaceAll('{port}', String(port)));
    else parts.push('--port', String(port));
    const cwd = process.env.BENCH_FRAMEWORK_CWD ? path.resolve(process.env.BENCH_FRAMEWORK_CWD) : root;
    const cmd = parts[0] === 'node' ? process.execPath : parts[0];
    return { cmd, args: parts.slice(1), cwd, display: `${parts.join(' ')}  (from BENCH_FRAMEWORK_CMD, cwd ${path.relative(root, cwd) || '.'})` };
  }
  const cliArgs = ['start', ...extra, '--host', '127.0.0.1', '--port', String(port), '--transport', transport, '--dispatch', dispatch];
  if (threads !== null) cliArgs.push('--threads', String(threads));
  const rel = '../../node_modules/.bin/diocp';
  if (fs.existsSync(path.join(templateDir, rel))) {
    return { cmd: process.execPath, args: [rel, ...cliArgs], cwd: templateDir, display: `node ${rel} ${cliArgs.join(' ')}  (cwd templates/default)` };
  }
  // `--no --offline`: resolve diocp from the workspace only; never look up or download
  // some other package called "diocp" from the registry.
  return { cmd: 'npx', args: ['--no', '--offline', 'diocp', ...cliArgs], cwd: templateDir, display: `npx --no --offline diocp ${cliArgs.join(' ')}  (cwd templates/default)`,
    hint: 'node_modules/.bin/diocp does not exist: is packages/core built and its "bin" (bin/diocp.js) in place? Run npm install from the repo root to create the link.' };
}

function serverCommand(kind, port) {
  if (kind === 'baseline') return baselineCommand(port);
  if (kind === 'framework') return frameworkCommand(port);
  if (kind === 'native') return frameworkCommand(port, 'inline', null, false, 'native');
  if (kind === 'cepoll' || kind === 'idle-cepoll') return cepollCommand(port);
  if (kind === 'idle-net' || kind === 'idle-native') {
    return frameworkCommand(port, 'inline', null, false, kind.slice(5), ['--config', idleConfigFile()]);
  }
  if (kind === 'inline') return frameworkCommand(port, 'inline', null, false);
  if (kind.startsWith('pool')) return frameworkCommand(port, 'local-pool', Number(kind.slice(4)), false);
  throw new Error(`unknown server kind ${kind}`);
}

function cepollCommand(port) {
  return { cmd: epollEchoBin, args: ['--port', String(port)], cwd: root, display: `bench/.build/epoll-echo --port ${port}` };
}

// The idle part's config: the example app's handlers, inline, no idle timeout, room for
// every connection (there is no --max-connections flag).
function idleConfigFile() {
  const file = path.join(buildDir, 'idle.config.json');
  const config = {
    handlers: [path.join(templateDir, 'dist', 'handlers')],
    dispatch: 'inline',
    idleTimeoutMs: 0,
    maxConnections: IDLE_MAX_CONNECTIONS,
    logLevel: 'warn',
  };
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

function baselineCommand(port) {
  const script = path.join(benchDir, 'baseline-echo.mjs');
  return { cmd: process.execPath, args: [script, '--port', String(port)], cwd: root, display: `node bench/baseline-echo.mjs --port ${port}` };
}

const live = new Set(); // child processes to clean up on exit

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

function startServer(spec, { nofile = null } = {}) {
  // prlimit and taskset both exec the command: the child's pid is the server's.
  let cmd = spec.cmd;
  let args = spec.args;
  if (nofile !== null) {
    args = [`--nofile=${nofile}:${nofile}`, '--', cmd, ...args];
    cmd = 'prlimit';
  }
  ({ cmd, args } = pinned(cmd, args, SERVER_CPU));
  // detached: own process group, so anything the server spawns can be cleaned up too.
  const child = spawn(cmd, args, {
    cwd: spec.cwd,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out = keepTail(16_384);
  const err = keepTail(16_384);
  child.stdout.setEncoding('utf8').on('data', (d) => out.push(d));
  child.stderr.setEncoding('utf8').on('data', (d) => err.push(d));
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => {
      err.push(`spawn failed: ${e.message}\n`);
      resolve({ code: null, signal: null, error: e });
    });
  });
  const srv = { child, out, err, exited, exit: null, group: true };
  exited.then((x) => {
    srv.exit = x;
  });
  live.add(srv);
  return srv;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitForPort(srv, port, what) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (srv.exit) {
      const { code, signal, error } = srv.exit;
      throw new Error(
        `${what} exited before accepting connections on port ${port} ` +
          `(${error ? error.message : signal ? `signal ${signal}` : `exit code ${code}`})` +
          tailText('stderr', srv.err.text) +
          tailText('stdout', srv.out.text),
      );
    }
    if (await tryConnect(port)) return;
    await sleep(50);
  }
  throw new Error(
    `${what} did not accept a connection on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s` +
      tailText('stderr', srv.err.text) +
      tailText('stdout', srv.out.text),
  );
}

function tailText(label, text) {
  const t = text.trim();
  if (!t) return '';
  const lines = t.split('\n').slice(-40).map((l) => `    | ${l}`);
  return `\n  ${label}:\n${lines.join('\n')}`;
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {}
}

// SIGTERM, wait up to 5 s, then SIGKILL. Returns notes about anything unusual.
async function stopServer(srv, what) {
  const notes = [];
  const pid = srv.child.pid;
  let groupKilled = false;
  if (!srv.exit && pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
    const t0 = Date.now();
    const r = await Promise.race([srv.exited, sleep(STOP_GRACE_MS).then(() => null)]);
    if (!r) {
      notes.push(`${what} did not exit within ${STOP_GRACE_MS / 1000} s of SIGTERM; sent SIGKILL`);
      killGroup(pid, 'SIGKILL');
      groupKilled = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      await Promise.race([srv.exited, sleep(2000)]);
    } else {
      const ms = Date.now() - t0;
      if (ms > 2000) notes.push(`${what} took ${(ms / 1000).toFixed(1)} s to exit after SIGTERM`);
    }
  }
  if (pid && !groupKilled && groupAlive(pid)) {
    // Give helper processes a moment to follow their parent, then clean up.
    await sleep(500);
    if (groupAlive(pid)) {
      notes.push(`${what} left processes running in its process group after it exited; killed them`);
      killGroup(pid, 'SIGKILL');
    }
  }
  live.delete(srv);
  return notes;
}

// ---------------------------------------------------------------- CPU accounting

// CPU time from /proc while loadgen measures: per thread of the server (the main thread,
// tid = pid, is the gateway/event-loop thread; the others are handler threads, libuv and
// V8 helpers), loadgen, and the whole machine (/proc/stat), so that a slow run can be told
// apart from a machine busy with something else.
const CLK_TCK = (() => {
  try {
    const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).stdout.trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

function readTicks(file) {
  try {
    const s = fs.readFileSync(file, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] = field 3 (state)
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch {
    return null;
  }
}

function cpuSnapshot(serverPid, loadgenPid) {
  const threads = {};
  try {
    for (const tid of fs.readdirSync(`/proc/${serverPid}/task`)) {
      const t = readTicks(`/proc/${serverPid}/task/${tid}/stat`);
      if (t !== null) threads[tid] = t;
    }
  } catch {}
  let machine = null;
  try {
    const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    // irq + softirq: mostly the loopback traffic of the run itself (not in any process's ticks).
    machine = { idle: v[3] + v[4], irq: v[5] + v[6], total: v.reduce((a, b) => a + b, 0) };
  } catch {}
  return { t: performance.now(), threads, loadgen: loadgenPid ? readTicks(`/proc/${loadgenPid}/stat`) : null, machine };
}

function cpuUsage(a, b, serverPid, cores) {
  const secs = (b.t - a.t) / 1000;
  if (!a || !b || !(secs > 0.05) || Object.keys(b.threads).length === 0) return null;
  const pct = (ticks) => (100 * ticks) / CLK_TCK / secs;
  let gateway = 0;
  const others = [];
  for (const [tid, t1] of Object.entries(b.threads)) {
    const p = pct(t1 - (a.threads[tid] ?? 0));
    if (Number(tid) === serverPid) gateway = p;
    else others.push(p);
  }
  others.sort((x, y) => y - x);
  const other = others.reduce((s, p) => s + p, 0);
  const loadgen = a.loadgen !== null && b.loadgen !== null ? pct(b.loadgen - a.loadgen) : null;
  let machine = null;
  let irq = null;
  if (a.machine && b.machine && b.machine.total > a.machine.total) {
    const span = b.machine.total - a.machine.total;
    machine = 100 * cores * (1 - (b.machine.idle - a.machine.idle) / span);
    irq = 100 * cores * ((b.machine.irq - a.machine.irq) / span);
  }
  // rest = other processes: busy time minus interrupts/softirqs, the server and loadgen.
  const rest = machine === null ? null : Math.max(0, machine - (irq ?? 0) - gateway - other - (loadgen ?? 0));
  return { seconds: secs, gateway, other, busiestOthers: others.slice(0, 4), loadgen, machine, irq, rest };
}

// ---------------------------------------------------------------- loadgen run

let liveLoadgen = null;

function runLoadgen(port, sc, opts, serverPid) {
  const args = [
    '--host', '127.0.0.1',
    '--port', String(port),
    '--connections', String(sc.connections),
    '--depth', String(sc.depth),
    '--duration-ms', String(opts.durationMs),
    '--warmup-ms', String(opts.warmupMs),
    ...sc.args,
  ];
  return new Promise((resolve) => {
    const p = pinned(loadgenBin, args, LOADGEN_CPU);
    const child = spawn(p.cmd, p.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    liveLoadgen = child;
    let out = '';
    const err = keepTail(8192);
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => err.push(d));
    const limit = opts.durationMs + opts.warmupMs + 30_000;
    const timer = setTimeout(() => {
      err.push(`\nbench: loadgen did not finish within ${limit} ms; killed\n`);
      child.kill('SIGKILL');
    }, limit);
    // CPU snapshots: when loadgen starts measuring, and shortly before it stops.
    let cpuA = null;
    let cpuB = null;
    const margin = Math.min(100, Math.floor(opts.durationMs / 10));
    const tA = setTimeout(() => (cpuA = cpuSnapshot(serverPid, child.pid)), opts.warmupMs + 20);
    const tB = setTimeout(() => (cpuB = cpuSnapshot(serverPid, child.pid)), opts.warmupMs + opts.durationMs - margin);
    child.on('error', (e) => err.push(`spawn failed: ${e.message}\n`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(tA);
      clearTimeout(tB);
      liveLoadgen = null;
      let result = null;
      const line = out.trim().split('\n').pop();
      try {
        if (line) result = JSON.parse(line);
      } catch {}
      const cpu = cpuA && cpuB ? cpuUsage(cpuA, cpuB, serverPid, machineInfo().cores) : null;
      resolve({ result, code, signal, stderr: err.text.trim(), cpu });
    });
  });
}

// ---------------------------------------------------------------- one run

// Whether @diocp/native-iocp imports from the example app's folder (as the CLI would) and
// exports createTransport. null = fine, else why not (the native rows then say so).
function nativeUnavailableReason() {
  const code = [
    'try {',
    "  const m = await import('@diocp/native-iocp');",
    "  if (typeof m.createTransport !== 'function') throw new Error('@diocp/native-iocp exports no createTransport function');",
    '} catch (e) {',
    "  console.log(e && e.code === 'ERR_MODULE_NOT_FOUND' ? `@diocp/native-iocp is not installed or not built (${e.message.split('\\n')[0]})` : String(e && e.message || e).split('\\n')[0]);",
    '  process.exit(1);',
    '}',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: templateDir, encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return null;
  return (r.stdout || '').trim() || (r.error ? r.error.message : `exit code ${r.status ?? r.signal}`);
}

let nativeMissing = null; // why the native transport cannot be benchmarked, or null

const serverWhat = (kind) =>
  kind === 'baseline' ? 'baseline server' : kind === 'cepoll' || kind === 'idle-cepoll' ? 'C epoll echo server' : `framework server (${kindLabel(kind)})`;

async function measure(kind, sc, opts) {
  const run = { part: sc.part, kind, scenario: sc.name, command: null, result: null, cpu: null, error: null, unavailable: null, notes: [] };
  if ((kind === 'native' || kind === 'idle-native') && nativeMissing) {
    run.unavailable = nativeMissing;
    return run;
  }
  const port = await freePort();
  const spec = serverCommand(kind, port);
  run.command = spec.display;
  const what = serverWhat(kind);
  const srv = startServer(spec);
  try {
    await waitForPort(srv, port, what);
    const lg = await runLoadgen(port, sc, opts, srv.child.pid);
    run.cpu = lg.cpu;
    if (!lg.result) {
      run.error = `loadgen failed (${lg.signal ? `signal ${lg.signal}` : `exit code ${lg.code}`})` + tailText('loadgen stderr', lg.stderr);
    } else {
      run.result = lg.result;
      if (lg.result.errors > 0) run.notes.push(`loadgen: ${lg.stderr.split('\n').filter(Boolean).slice(-6).join(' / ')}`);
    }
    if (srv.exit) {
      run.error = (run.error ? run.error + '\n' : '') +
        `${what} exited during the run (${srv.exit.signal ? `signal ${srv.exit.signal}` : `exit code ${srv.exit.code}`})` +
        tailText('stderr', srv.err.text);
    }
  } catch (e) {
    run.error = e.message + (spec.hint ? `\n  hint: ${spec.hint}` : '');
  } finally {
    run.notes.push(...(await stopServer(srv, what)));
  }
  markUnavailable(run, srv);
  return run;
}

// A native server that refused to start because the addon is missing: not a failure of the
// bench; the row says "not available" when no run of it succeeded.
function markUnavailable(run, srv) {
  if (run.result || !(run.kind === 'native' || run.kind === 'idle-native')) return;
  const m = /DIOCP_ERR_TRANSPORT_UNAVAILABLE[^\n]*|transport "native" is not available[^\n"]*/.exec(srv.err.text + srv.out.text);
  if (!m) return;
  // Not sticky: the addon may be in the middle of a rebuild; the next native run tries again.
  run.unavailable = m[0].slice(0, 300);
  run.error = null;
}

// ---------------------------------------------------------------- idle part

function readRssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Sockets among the process's open descriptors (/proc/PID/fd). */
function countSockets(pid) {
  let n = 0;
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
      } catch {}
    }
  } catch {
    return null;
  }
  return n;
}

/** RSS once it stops moving: 4 reads 250 ms apart within 64 kB of each other, or after maxMs. */
async function settledRssKb(pid, maxMs) {
  const t0 = Date.now();
  const last = [];
  for (;;) {
    const v = readRssKb(pid);
    if (v === null) return null;
    last.push(v);
    if (last.length > 4) last.shift();
    if (last.length === 4 && Math.max(...last) - Math.min(...last) <= 64) return v;
    if (Date.now() - t0 > maxMs) return v;
    await sleep(250);
  }
}

let liveIdle = null;

// Runs bench/idle-conns: opens `n` connections, resolves `opened` with its first JSON line;
// ping() sends "ping" and resolves with the next line; end() closes stdin and resolves on exit.
function startIdleConns(port, n) {
  const p = pinned(idleConnsBin, ['--port', String(port), '--connections', String(n)], LOADGEN_CPU);
  const child = spawn(p.cmd, p.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  liveIdle = child;
  const err = keepTail(4096);
  child.stderr.setEncoding('utf8').on('data', (d) => err.push(d));
  const waiting = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let v = null;
      try {
        v = JSON.parse(line);
      } catch {}
      waiting.shift()?.(v);
    }
  });
  const exited = new Promise((resolve) => {
    child.on('error', (e) => {
      err.push(`spawn failed: ${e.message}`);
      resolve(-1);
    });
    child.on('close', (code) => {
      liveIdle = null;
      for (const w of waiting.splice(0)) w(null);
      resolve(code);
    });
  });
  const nextLine = (ms) =>
    new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), ms);
      waiting.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  return {
    opened: nextLine(60_000),
    ping() {
      const line = nextLine(60_000);
      child.stdin.write('ping\n');
      return line;
    },
    async end() {
      child.stdin.end();
      const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout')]);
      if (code === 'timeout') child.kill('SIGKILL');
      return code;
    },
    get stderr() {
      return err.text.trim();
    },
  };
}

// One idle run: warm the server up with IDLE_WARMUP_CONNECTIONS connections (code paths,
// pools, first allocations), settle, read RSS; open N idle connections, check that the server
// holds them (its socket count) and, after reading RSS, that it answers a PING on each.
async function measureIdle(kind, opts) {
  const n = opts.idleConnections;
  const run = { part: 'idle', kind, scenario: `idle-${n}`, command: null, result: null, cpu: null, error: null, unavailable: null, notes: [] };
  if (kind === 'idle-native' && nativeMissing) {
    run.unavailable = nativeMissing;
    return run;
  }
  const port = await freePort();
  const spec = serverCommand(kind, port);
  run.command = spec.display;
  const what = serverWhat(kind);
  const srv = startServer(spec, { nofile: IDLE_NOFILE });
  const settleMs = opts.quick ? 3000 : 8000;
  try {
    await waitForPort(srv, port, what);
    const pid = srv.child.pid;
    const warm = startIdleConns(port, Math.min(IDLE_WARMUP_CONNECTIONS, n));
    const w1 = await warm.opened;
    const w2 = w1 ? await warm.ping() : null;
    await warm.end();
    if (!w1 || !w2 || w2.answered !== w1.opened) throw new Error(`warm-up failed: ${JSON.stringify(w1)} ${JSON.stringify(w2)}${tailText('idle-conns stderr', warm.stderr)}`);
    await sleep(300);
    const baseSockets = countSockets(pid);
    const rss0 = await settledRssKb(pid, settleMs);
    const ic = startIdleConns(port, n);
    const o = await ic.opened;
    if (!o) throw new Error(`idle-conns did not report opening its connections${tailText('idle-conns stderr', ic.stderr)}`);
    // The server holds them when its socket count has grown by n (accept may lag connect).
    let sockets = countSockets(pid);
    const deadline = Date.now() + 20_000;
    while (sockets !== null && sockets < baseSockets + o.opened && Date.now() < deadline) {
      await sleep(100);
      sockets = countSockets(pid);
    }
    const rss1 = await settledRssKb(pid, settleMs);
    const held = sockets === null ? null : sockets - baseSockets;
    const pingRes = await ic.ping();
    const code = await ic.end();
    await sleep(500);
    const rss2 = readRssKb(pid);
    if (srv.exit) throw new Error(`${what} exited during the run${tailText('stderr', srv.err.text)}`);
    run.result = {
      connections: n,
      opened: o.opened,
      openMs: o.ms,
      held,
      pinged: pingRes ? pingRes.answered : 0,
      pingBad: pingRes ? pingRes.bad + pingRes.closed : null,
      rssBeforeKb: rss0,
      rssIdleKb: rss1,
      rssAfterCloseKb: rss2,
      bytesPerConn: rss0 !== null && rss1 !== null ? ((rss1 - rss0) * 1024) / n : null,
      errors: (n - o.opened) + (held === null || held < n ? 1 : 0) + (!pingRes || pingRes.answered !== n ? 1 : 0),
    };
    if (o.opened !== n) run.notes.push(`only ${o.opened} of ${n} connections opened (${o.first_error ?? 'no error given'})`);
    if (held !== null && held < n) run.notes.push(`the server held only ${held} of ${n} connections (sockets in /proc/${pid}/fd)`);
    if (!pingRes || pingRes.answered !== n) run.notes.push(`PING answered on ${pingRes ? pingRes.answered : 0} of ${n} connections`);
    if (code !== 0 && run.notes.length === 0) run.notes.push(`idle-conns exited with ${code}: ${ic.stderr}`);
  } catch (e) {
    run.error = e.message + (spec.hint ? `\n  hint: ${spec.hint}` : '');
  } finally {
    run.notes.push(...(await stopServer(srv, what)));
  }
  markUnavailable(run, srv);
  return run;
}

// ---------------------------------------------------------------- report

const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtMs = (us) => (us / 1000).toFixed(2);
const fmtPct = (p) => (p === null || p === undefined ? '—' : String(Math.round(p)));

/** best: highest (or lowest) key; median: the middle run by that key. */
function pickRun(runs, how, key = (r) => r.result.rps, higherIsBetter = true) {
  const ok = runs.filter((r) => r.result);
  if (ok.length === 0) return null;
  const sorted = [...ok].sort((a, b) => (higherIsBetter ? key(b) - key(a) : key(a) - key(b)));
  return how === 'best' ? sorted[0] : sorted[Math.floor((sorted.length - 1) / 2)];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** req/s ÷ the baseline's req/s of the same round, for every round where both ran. */
function roundRatios(runs, baseRuns) {
  const out = [];
  for (const r of runs) {
    const b = baseRuns.find((x) => x.round === r.round);
    if (r.result && b?.result && b.result.rps > 0) out.push(r.result.rps / b.result.rps);
  }
  return out;
}

function errorsOf(runs) {
  const errors = runs.reduce((s, r) => s + (r.result ? r.result.errors : 0), 0);
  const failed = runs.filter((r) => !r.result).length;
  return String(errors) + (failed ? ` (+${failed} failed run${failed > 1 ? 's' : ''})` : '');
}

function buildEchoRows(all, opts) {
  const rows = [];
  for (const sc of opts.scenarioList) {
    const picked = {};
    for (const kind of opts.kinds) {
      const runs = all.filter((r) => r.part === 'echo' && r.scenario === sc.name && r.kind === kind);
      picked[kind] = { run: pickRun(runs, opts.pick), runs };
    }
    const base = picked.baseline?.run?.result;
    const cref = picked.cepoll?.run?.result;
    for (const kind of opts.kinds) {
      const { run, runs } = picked[kind];
      const res = run?.result;
      const unavailable = runs.find((r) => r.unavailable)?.unavailable;
      const ratioTo = (ref, refKind) => (res && ref && ref.rps > 0 && kind !== refKind ? `${(res.rps / ref.rps).toFixed(2)}×` : '—');
      // Each round runs every server once, back to back: the ratio within a round is immune to
      // the machine's slow and fast phases that move all servers of a round alike.
      const rounds = kind === 'baseline' ? [] : roundRatios(runs, picked.baseline?.runs ?? []);
      const paired = rounds.length > 0 ? median(rounds) : null;
      let target = '—';
      if (kind === 'native' && res && base && base.rps > 0) {
        const x = res.rps / base.rps;
        const met = (v) => (v >= NATIVE_TARGET_RATIO ? 'met' : '**not met**');
        target = `≥ ${NATIVE_TARGET_RATIO}×: ${met(x)}` + (paired !== null && rounds.length > 1 ? `; per round: ${met(paired)}` : '');
      }
      rows.push({
        scenario: `${sc.connections} conn × ${sc.depth} in flight`,
        server: kindLabel(kind),
        rps: res ? fmtInt(res.rps) : unavailable ? 'not available' : 'failed',
        all: runs.map((r) => (r.result ? `${Math.round(r.result.rps / 1000)}k` : r.unavailable ? 'n/a' : 'failed')).join(' / '),
        p50: res ? fmtInt(res.p50_us) : '—',
        p99: res ? fmtInt(res.p99_us) : '—',
        errors: unavailable && !res ? '—' : errorsOf(runs),
        gw: fmtPct(run?.cpu?.gateway),
        other: fmtPct(run?.cpu?.other),
        lg: fmtPct(run?.cpu?.loadgen),
        rest: run?.cpu && run.cpu.machine !== null ? fmtPct(run.cpu.rest) : '—',
        ratio: ratioTo(base, 'baseline'),
        cratio: ratioTo(cref, 'cepoll'),
        rounds: rounds.length > 1 ? `${paired.toFixed(2)}× (${rounds.map((x) => x.toFixed(2)).join(' / ')})` : '—',
        target,
      });
    }
  }
  return rows;
}

const ECHO_COLS = [
  ['scenario', 'scenario'],
  ['server', 'server'],
  ['rps', 'req/s', 1],
  ['all', 'req/s, every run', 1],
  ['p50', 'p50 µs', 1],
  ['p99', 'p99 µs', 1],
  ['errors', 'errors', 1],
  ['gw', 'CPU % main thread', 1],
  ['other', 'CPU % other threads', 1],
  ['lg', 'CPU % loadgen', 1],
  ['rest', 'CPU % other processes', 1],
  ['ratio', '÷ baseline', 1],
  ['cratio', '÷ C epoll', 1],
  ['rounds', '÷ baseline per round: median (each)', 1],
  ['target', 'target (native ÷ baseline)'],
];

function buildIdleRows(all, opts) {
  return IDLE_KINDS.map((kind) => {
    const runs = all.filter((r) => r.part === 'idle' && r.kind === kind);
    // Reported run: lowest bytes per connection (best) or the middle one (median).
    const run = pickRun(runs, opts.pick, (r) => r.result.bytesPerConn ?? Infinity, false);
    const res = run?.result;
    const unavailable = runs.find((r) => r.unavailable)?.unavailable;
    const mb = (kb) => (kb === null || kb === undefined ? '—' : (kb / 1024).toFixed(1));
    let target = '—';
    if (kind === 'idle-native' && res && res.bytesPerConn !== null) {
      target = res.bytesPerConn <= IDLE_TARGET_BYTES ? `≤ ${IDLE_TARGET_BYTES} B: met` : `≤ ${IDLE_TARGET_BYTES} B: **not met**`;
    }
    return {
      server: kindLabel(kind),
      conns: res ? fmtInt(res.opened) : unavailable ? 'not available' : 'failed',
      held: res && res.held !== null ? fmtInt(res.held) : '—',
      pinged: res ? fmtInt(res.pinged) : '—',
      rss0: mb(res?.rssBeforeKb),
      rss1: mb(res?.rssIdleKb),
      rss2: mb(res?.rssAfterCloseKb),
      per: res && res.bytesPerConn !== null ? fmtInt(res.bytesPerConn) : '—',
      all: runs.map((r) => (r.result && r.result.bytesPerConn !== null ? fmtInt(r.result.bytesPerConn) : r.unavailable ? 'n/a' : 'failed')).join(' / '),
      target,
    };
  });
}

const IDLE_COLS = [
  ['server', 'server'],
  ['conns', 'connections', 1],
  ['held', 'held by server', 1],
  ['pinged', 'PING answered', 1],
  ['rss0', 'RSS before MiB', 1],
  ['rss1', 'RSS idle MiB', 1],
  ['rss2', 'RSS after close MiB', 1],
  ['per', 'bytes / connection', 1],
  ['all', 'bytes / conn, every run', 1],
  ['target', 'target (native)'],
];

const cpuCells = (cpu) => ({
  gw: fmtPct(cpu?.gateway),
  other: cpu ? `${fmtPct(cpu.other)}${cpu.busiestOthers.length ? ` (${cpu.busiestOthers.slice(0, 2).map(fmtPct).join('+')})` : ''}` : '—',
  lg: fmtPct(cpu?.loadgen),
  rest: cpu && cpu.machine !== null ? `${fmtPct(cpu.machine)} / ${fmtPct(cpu.rest)}` : '—',
});

function buildPoolRows(all, opts) {
  const runsOf = (kind) => all.filter((r) => r.part === 'pool' && r.kind === kind);
  const inline = pickRun(runsOf('inline'), opts.pick)?.result;
  return opts.serverKinds.map((kind) => {
    const runs = runsOf(kind);
    const run = pickRun(runs, opts.pick);
    const res = run?.result;
    let ratio = '—';
    let target = '—';
    if (kind !== 'inline' && res && inline && inline.rps > 0) {
      const x = res.rps / inline.rps;
      ratio = `${x.toFixed(2)}×`;
      target = x >= POOL_TARGET_RATIO ? `≥ ${POOL_TARGET_RATIO}×: met` : `≥ ${POOL_TARGET_RATIO}×: **not met**`;
    }
    return {
      server: kindLabel(kind),
      rps: res ? fmtInt(res.rps) : 'failed',
      all: runs.map((r) => (r.result ? `${Math.round(r.result.rps / 1000)}k` : 'failed')).join(' / '),
      p50: res ? fmtInt(res.p50_us) : '—',
      p99: res ? fmtInt(res.p99_us) : '—',
      errors: errorsOf(runs),
      ...cpuCells(run?.cpu),
      ratio,
      target,
    };
  });
}

const POOL_COLS = [
  ['server', 'server'],
  ['rps', 'req/s', 1],
  ['all', 'req/s, every run', 1],
  ['p50', 'p50 µs', 1],
  ['p99', 'p99 µs', 1],
  ['errors', 'errors', 1],
  ['gw', 'CPU % main thread', 1],
  ['other', 'CPU % other threads (top 2)', 1],
  ['lg', 'CPU % loadgen', 1],
  ['rest', 'CPU % machine / rest', 1],
  ['ratio', 'local-pool ÷ inline', 1],
  ['target', 'target'],
];

function buildPingRows(all, opts) {
  return opts.serverKinds.map((kind) => {
    const runs = all.filter((r) => r.part === 'ping' && r.kind === kind);
    // Reported run: by PING p99 (best = lowest, median = middle).
    const run = pickRun(runs, opts.pick, (r) => r.result.ping_p99_us ?? Infinity, false);
    const res = run?.result;
    let target = '—';
    if (kind !== 'inline' && res) target = res.ping_p99_us < PING_TARGET_MS * 1000 ? `p99 < ${PING_TARGET_MS} ms: met` : `p99 < ${PING_TARGET_MS} ms: **not met**`;
    return {
      server: kindLabel(kind),
      rps: res ? fmtInt(res.rps) : 'failed',
      wp50: res ? fmtMs(res.p50_us) : '—',
      wp99: res ? fmtMs(res.p99_us) : '—',
      pings: res ? fmtInt(res.ping_requests ?? 0) : '—',
      pp50: res ? fmtMs(res.ping_p50_us) : '—',
      pp99: res ? fmtMs(res.ping_p99_us) : '—',
      pmax: res ? fmtMs(res.ping_max_us) : '—',
      pall: runs.map((r) => (r.result ? fmtMs(r.result.ping_p99_us) : 'failed')).join(' / '),
      errors: errorsOf(runs),
      ...cpuCells(run?.cpu),
      target,
    };
  });
}

const PING_COLS = [
  ['server', 'server'],
  ['rps', 'work req/s', 1],
  ['wp50', 'work p50 ms', 1],
  ['wp99', 'work p99 ms', 1],
  ['pings', 'PINGs', 1],
  ['pp50', 'PING p50 ms', 1],
  ['pp99', 'PING p99 ms', 1],
  ['pmax', 'PING max ms', 1],
  ['pall', 'PING p99 ms, every run', 1],
  ['errors', 'errors', 1],
  ['gw', 'CPU % main thread', 1],
  ['other', 'CPU % other threads (top 2)', 1],
  ['lg', 'CPU % loadgen', 1],
  ['rest', 'CPU % machine / rest', 1],
  ['target', 'target'],
];

function textTable(cols, rows) {
  const w = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => r[k].replaceAll('**', '').length)));
  const line = (cells) => cells.map((c, i) => (cols[i][2] ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
  return [
    line(cols.map(([, h]) => h)),
    w.map((n) => '-'.repeat(n)).join('  '),
    ...rows.map((r) => line(cols.map(([k]) => r[k].replaceAll('**', '')))),
  ].join('\n');
}

function mdTable(cols, rows) {
  const head = `| ${cols.map(([, h]) => h).join(' | ')} |`;
  const sep = `|${cols.map((c) => (c[2] ? '---:' : '---')).join('|')}|`;
  return [head, sep, ...rows.map((r) => `| ${cols.map(([k]) => r[k]).join(' | ')} |`)].join('\n');
}

function machineInfo() {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() || 'unknown CPU';
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length;
  return { model, cores, node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`, date: new Date().toISOString() };
}

const mdCommand = (display) =>
  display.replace(/--port \d+/, '--port P').replace(/^(.*?)(  \(.*\))?$/, (_, c, rest) => `\`${c}\`${rest ? ' ' + rest.trim() : ''}`);

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  opts.scenarioList = opts.scenarios.length ? SCENARIOS.filter((s) => opts.scenarios.includes(s.name)) : SCENARIOS;
  opts.kinds = opts.only ? ECHO_KINDS.filter((k) => opts.only.includes(k)) : [...ECHO_KINDS];
  opts.serverKinds = ['inline', ...opts.threads.map((t) => `pool${t}`)];
  const has = (p) => opts.parts.includes(p);
  ensureBinaries();
  pinning = detectPinning(opts.pin);
  if ((has('echo') && opts.kinds.includes('native')) || has('idle')) {
    nativeMissing = nativeUnavailableReason();
    if (nativeMissing) console.log(`bench: the native transport is not available, its rows say so: ${nativeMissing}`);
  }

  const m = machineInfo();
  const load0 = os.loadavg()[0];
  console.log(
    `bench: ${m.model}, ${m.cores} cores, Node ${m.node}; parts ${opts.parts.join(', ')}; warmup ${opts.warmupMs} ms, ` +
      `measure ${opts.durationMs} ms, repeat ${opts.repeat}, report ${opts.pick}; local-pool threads ${opts.threads.join(', ')}; ` +
      `load average (1 min) ${load0.toFixed(2)}`,
  );
  console.log(`bench: ${pinning.why}${notPinnedNote(has)}`);

  const plan = [];
  const alternate = (kinds, r) => (r % 2 === 0 ? kinds : [...kinds].reverse());
  if (has('echo')) {
    for (const sc of opts.scenarioList) {
      for (let r = 0; r < opts.repeat; r++) for (const kind of alternate(opts.kinds, r)) plan.push({ sc, kind, r });
    }
  }
  if (has('pool')) {
    for (let r = 0; r < opts.repeat; r++) for (const kind of alternate(opts.serverKinds, r)) plan.push({ sc: POOL_SCENARIO, kind, r });
  }
  if (has('ping')) {
    for (let r = 0; r < opts.repeat; r++) for (const kind of alternate(opts.serverKinds, r)) plan.push({ sc: PING_SCENARIO, kind, r });
  }
  const IDLE_SCENARIO = { part: 'idle', name: `idle-${opts.idleConnections}` };
  if (has('idle')) {
    for (let r = 0; r < opts.repeat; r++) for (const kind of alternate(IDLE_KINDS, r)) plan.push({ sc: IDLE_SCENARIO, kind, r });
  }

  const describe = (sc) =>
    sc.part === 'ping'
      ? `${sc.connections} connections × ${sc.depth} in flight of 0x${WORK_COMMAND.toString(16).padStart(2, '0')} {"ms":${WORK_MS}} + 1 PING connection (every ${PING_INTERVAL_US / 1000} ms)`
      : sc.part === 'idle'
        ? `${fmtInt(opts.idleConnections)} idle connections (after ${fmtInt(Math.min(IDLE_WARMUP_CONNECTIONS, opts.idleConnections))} for warm-up)`
        : `${sc.connections} connections × ${sc.depth} in flight, ${PAYLOAD} B echo`;
  const all = [];
  for (let i = 0; i < plan.length; i++) {
    const { sc, kind, r } = plan[i];
    const rep = opts.repeat > 1 ? `, run ${r + 1}/${opts.repeat}` : '';
    const timing = sc.part === 'idle' ? '' : ` (${opts.warmupMs} ms warmup + ${opts.durationMs} ms)`;
    console.log(`[${i + 1}/${plan.length}] ${sc.part}: ${kindLabel(kind)}: ${describe(sc)}${rep}${timing} ...`);
    let run = sc.part === 'idle' ? await measureIdle(kind, opts) : await measure(kind, sc, opts);
    // A run disturbed by other processes: try again (twice at most), keep the quietest.
    for (let retry = 1; sc.part !== 'idle' && opts.retryNoisy !== null && retry <= 2; retry++) {
      const noisy = (r) => r.result && r.cpu && r.cpu.rest !== null && r.cpu.rest > opts.retryNoisy;
      if (!noisy(run)) break;
      console.log(`      other processes took ${fmtPct(run.cpu.rest)} % CPU during this run (over ${opts.retryNoisy}): again (${retry}/2) ...`);
      const again = await measure(kind, sc, opts);
      const quieter = again.result && (!again.cpu || again.cpu.rest === null || again.cpu.rest < run.cpu.rest);
      const dropped = quieter ? run : again;
      if (quieter) run = again;
      run.notes.push(`rerun: an attempt with ${fmtPct(dropped.cpu?.rest)} % CPU taken by other processes was dropped`);
    }
    run.round = r;
    all.push(run);
    if (run.unavailable) console.log(`      not available: ${run.unavailable}`);
    if (run.result && sc.part === 'idle') {
      const x = run.result;
      const mb = (kb) => (kb === null ? '?' : (kb / 1024).toFixed(1));
      console.log(
        `      ${fmtInt(x.opened)} opened in ${x.openMs} ms, ${x.held === null ? '?' : fmtInt(x.held)} held by the server, PING answered on ${fmtInt(x.pinged)}; ` +
          `RSS ${mb(x.rssBeforeKb)} -> ${mb(x.rssIdleKb)} MiB (${x.bytesPerConn === null ? '?' : fmtInt(x.bytesPerConn)} B per connection), ${mb(x.rssAfterCloseKb)} MiB after closing`,
      );
    } else if (run.result) {
      const x = run.result;
      const cpu = run.cpu
        ? `; CPU % main thread ${fmtPct(run.cpu.gateway)}, other threads ${fmtPct(run.cpu.other)}, loadgen ${fmtPct(run.cpu.loadgen)}, softirq ${fmtPct(run.cpu.irq)}, other processes ${fmtPct(run.cpu.rest)}`
        : '';
      if (sc.part === 'ping') {
        console.log(
          `      work ${fmtInt(x.rps)} req/s, p50 ${fmtMs(x.p50_us)} ms, p99 ${fmtMs(x.p99_us)} ms; PING ${fmtInt(x.ping_requests)}: ` +
            `p50 ${fmtMs(x.ping_p50_us)} ms, p99 ${fmtMs(x.ping_p99_us)} ms, max ${fmtMs(x.ping_max_us)} ms; errors ${x.errors}${cpu}`,
        );
      } else {
        console.log(`      ${fmtInt(x.rps)} req/s, p50 ${x.p50_us} µs, p99 ${x.p99_us} µs, max ${x.max_us} µs, errors ${x.errors}${cpu}`);
      }
    }
    if (run.error) console.log(`      FAILED: ${run.error}`);
    for (const n of run.notes) console.log(`      note: ${n}`);
  }

  const load1 = os.loadavg()[0];
  const errors = all.reduce((s, r) => s + (r.result ? r.result.errors : 0), 0);
  const failed = all.filter((r) => (!r.result && !r.unavailable) || r.error).length;
  const machine = `${m.model}, ${m.cores} cores, Node ${m.node}, ${m.os}; ${m.date}; load average (1 min) ${load0.toFixed(2)} before, ${load1.toFixed(2)} after`;
  const notes = all.flatMap((r) => r.notes.map((n) => `${r.part} ${kindLabel(r.kind)} ${r.scenario}: ${n}`));
  const commandOf = (part, kind) => all.find((r) => r.part === part && r.kind === kind)?.command;
  const cpuNote =
    `CPU % (local-pool and PING tables): 100 = one core, from /proc over the measured window of the reported run; main thread = the server's event loop ` +
    `(gateway, I/O); other threads = handler threads, libuv and V8 helpers (the two busiest in brackets); machine = all cores ` +
    `(${m.cores * 100} = every core busy), rest = machine minus interrupts/softirqs (the run's own loopback traffic), server and loadgen: other processes`;
  const runsLine = `warmup ${opts.warmupMs} ms, measured ${opts.durationMs} ms per run, ${opts.repeat} run(s) per server, order alternated`;

  const sections = []; // { title, text, md, bullets }
  if (has('echo')) {
    const rows = buildEchoRows(all, opts);
    sections.push({
      title: 'echo: framework (net and native transports, inline) vs hand-written node:net baseline and C epoll',
      cols: ECHO_COLS,
      rows,
      bullets: [
        `settings: ${PAYLOAD} B payload, command 0x${COMMAND.toString(16).padStart(4, '0')}, ${runsLine}, ${opts.pick} run reported; ` +
          `÷ baseline = req/s ÷ the hand-written node:net echo's req/s (reported runs); per round = each round's req/s ÷ the baseline's in the same round (every server runs once per round, back to back, so a slow or fast phase of the shared machine moves both alike), and their median; ÷ C epoll = req/s ÷ the C epoll echo's (hardware reference); ` +
          `target: native ÷ baseline ≥ ${NATIVE_TARGET_RATIO}×; ${pinning.why}`,
        `load generator: bench/loadgen.c (C, epoll, one thread); baseline: bench/baseline-echo.mjs (hand-written node:net echo); C epoll: bench/epoll-echo.c (one thread, one write per read)`,
        `CPU %: 100 = one core, over the measured window of the reported run: the server's main thread (JS event loop), its other threads (the native I/O thread, libuv, V8 helpers), loadgen, and other processes (the machine's busy time minus interrupts/softirqs — the run's own loopback traffic — the server and loadgen: well above 0 means the run was disturbed)`,
        ...opts.kinds.map((k) => commandOf('echo', k)).filter(Boolean).map((c) => `server: ${mdCommand(c)}`),
      ],
    });
  }
  if (has('pool')) {
    sections.push({
      title: 'local-pool vs inline dispatch (echo)',
      cols: POOL_COLS,
      rows: buildPoolRows(all, opts),
      bullets: [
        `settings: ${POOL_SCENARIO.connections} connections × ${POOL_SCENARIO.depth} in flight, ${PAYLOAD} B payload, command 0x${COMMAND.toString(16).padStart(4, '0')}, ` +
          `${runsLine}, ${opts.pick} run by req/s reported; ratio = local-pool req/s ÷ inline req/s (target ≥ ${POOL_TARGET_RATIO}×)`,
        ...opts.serverKinds.map((k) => commandOf('pool', k)).filter(Boolean).map((c) => `server: ${mdCommand(c)}`),
      ],
    });
  }
  if (has('ping')) {
    sections.push({
      title: 'PING latency under CPU load',
      cols: PING_COLS,
      rows: buildPingRows(all, opts),
      bullets: [
        `settings: work load = ${PING_SCENARIO.connections} connections × ${PING_SCENARIO.depth} in flight of command 0x${WORK_COMMAND.toString(16).padStart(4, '0')} ` +
          `{"ms":${WORK_MS}} (about ${WORK_MS} ms of CPU in the handler each, reply checked: status 0, request id, {"spun":…}); ` +
          `plus 1 connection sending PING (0xFFFF, 8 B payload, echo checked) one at a time, the next about ${PING_INTERVAL_US / 1000} ms (2–3 ms) after the previous was sent ` +
          `or as soon as its reply arrives if later; ${runsLine}; ${opts.pick} run by PING p99 reported (every run's p99 alongside); ` +
          `target: local-pool PING p99 < ${PING_TARGET_MS} ms`,
        ...opts.serverKinds.map((k) => commandOf('ping', k)).filter(Boolean).map((c) => `server: ${mdCommand(c)}`),
      ],
    });
  }

  if (has('idle')) {
    sections.push({
      title: `idle connections: server memory per connection (${fmtInt(opts.idleConnections)} connections)`,
      cols: IDLE_COLS,
      rows: buildIdleRows(all, opts),
      bullets: [
        `settings: bench/idle-conns.c opens ${fmtInt(opts.idleConnections)} connections (RLIMIT_NOFILE raised to its hard limit) and sends nothing; ` +
          `bytes / connection = (server VmRSS with them open − VmRSS before) ÷ connections, RSS read from /proc/PID/status once settled ` +
          `(4 reads 250 ms apart within 64 kB, at most ${opts.quick ? 3 : 8} s); before = after a warm-up of ${fmtInt(Math.min(IDLE_WARMUP_CONNECTIONS, opts.idleConnections))} connections opened, PINGed and closed; ` +
          `held by server = growth of the sockets in /proc/PID/fd; then one PING on every connection must be answered; ` +
          `server started with prlimit --nofile=${IDLE_NOFILE}:${IDLE_NOFILE}, idleTimeoutMs 0, maxConnections ${IDLE_MAX_CONNECTIONS} (config file bench/.build/idle.config.json); ` +
          `${opts.repeat} run(s) per server, ${opts.pick} run (by bytes / connection) reported; target: native ≤ ${IDLE_TARGET_BYTES} B; ${pinning.why}`,
        `kernel socket buffers are not in RSS: this is the server process's own memory per connection`,
        ...IDLE_KINDS.map((k) => commandOf('idle', k)).filter(Boolean).map((c) => `server: ${mdCommand(c)}`),
      ],
    });
  }

  for (const s of sections) {
    console.log('');
    console.log(`== ${s.title}`);
    console.log(textTable(s.cols, s.rows));
    for (const b of s.bullets.slice(0, 1)) console.log(b);
  }
  console.log('');
  console.log(`machine: ${machine}`);
  console.log(`pinning: ${pinning.why}${notPinnedNote(has)}`);
  if (has('pool') || has('ping')) console.log(cpuNote);

  const md = [
    `### diocp benchmark (${m.date.slice(0, 10)})`,
    '',
    `- machine: ${machine}`,
    `- pinning: ${pinning.why}${notPinnedNote(has)}`,
    ...(has('pool') || has('ping') ? [`- ${cpuNote}`] : []),
    '',
    ...sections.flatMap((s) => [`#### ${s.title}`, '', mdTable(s.cols, s.rows), '', ...s.bullets.map((b) => `- ${b}`), '']),
    ...notes.map((n) => `- note: ${n}`),
    ...all.filter((r) => r.error).map((r) => `- FAILED ${r.part} ${kindLabel(r.kind)} ${r.scenario}: ${r.error.split('\n')[0]}`),
    ...(all.some((r) => r.unavailable) ? [`- not available: the native transport (${all.find((r) => r.unavailable).unavailable})`] : []),
    '',
  ].join('\n');
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(path.join(buildDir, 'last-run.md'), md);
  fs.writeFileSync(
    path.join(buildDir, 'last-run.json'),
    JSON.stringify({ machine: m, loadavg: { before: load0, after: load1 }, opts: { ...opts, scenarioList: undefined }, runs: all }, null, 2) + '\n',
  );
  console.log(`written: ${path.relative(root, path.join(buildDir, 'last-run.md'))}`);

  if (errors > 0 || failed > 0) {
    console.error(`bench: ${errors} protocol/request error(s), ${failed} failed run(s)`);
    process.exitCode = 1;
  }

  // Then remote dispatch (bench/remote.mjs) and @diocp/jobs (bench/jobs.mjs), each in its
  // own process; their tables go straight to our output.
  if (has('remote')) await runRemoteBench(opts);
  if (has('jobs')) await runJobsBench(opts, md);
}

// ---------------------------------------------------------------- remote dispatch bench

// Which of the selected parts run unpinned (in their own process, with their own layout).
function notPinnedNote(has) {
  const parts = ['remote', 'jobs'].filter(has);
  return parts.length ? ` (not pinned: the ${parts.join(' and ')} part${parts.length > 1 ? 's' : ''})` : '';
}

let liveSubBench = null;

// `node <script> <args>` with its output on ours; resolves 0 or why it failed.
function runSubBench(script, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(benchDir, script), ...args], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    liveSubBench = child;
    child.on('error', (e) => resolve(`spawn failed: ${e.message}`));
    child.on('close', (code, signal) => {
      liveSubBench = null;
      resolve(signal ? `signal ${signal}` : code === 0 ? 0 : `exit code ${code}`);
    });
  });
}

// Runs `node bench/remote.mjs [--quick] [--repeat N]`: remote (two workers) against inline in
// the same run, then the failover pause. Its JSON result is bench/.build/remote.json.
async function runRemoteBench(opts) {
  if (process.env.BENCH_SKIP_REMOTE === '1') {
    console.log('bench: BENCH_SKIP_REMOTE=1: remote-dispatch benchmark skipped');
    return;
  }
  const args = [...(opts.quick ? ['--quick'] : []), ...(opts.repeat > 1 ? ['--repeat', String(opts.repeat)] : [])];
  console.log('');
  console.log(`bench: remote dispatch: node bench/remote.mjs ${args.join(' ')}`.trimEnd());
  const status = await runSubBench('remote.mjs', args);
  if (status !== 0) {
    console.error(`bench: bench/remote.mjs failed (${status})`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------- @diocp/jobs bench

// Runs `node bench/jobs.mjs [--quick]` (its progress and table go straight to our output) and
// appends its table (bench/.build/jobs-last-run.md) to bench/.build/last-run.md.
// BENCH_SKIP_JOBS=1 skips it.
async function runJobsBench(opts, echoMd) {
  if (process.env.BENCH_SKIP_JOBS === '1') {
    console.log('bench: BENCH_SKIP_JOBS=1: @diocp/jobs benchmark skipped');
    return;
  }
  const args = opts.quick ? ['--quick'] : [];
  const mdFile = path.join(buildDir, 'jobs-last-run.md');
  fs.rmSync(mdFile, { force: true });
  console.log('');
  console.log(`bench: @diocp/jobs: node bench/jobs.mjs${opts.quick ? ' --quick' : ''}`);
  const status = await runSubBench('jobs.mjs', args);
  if (status !== 0 || !fs.existsSync(mdFile)) {
    console.error(`bench: bench/jobs.mjs failed (${status === 0 ? 'no table written' : status})`);
    process.exitCode = 1;
    return;
  }
  fs.writeFileSync(path.join(buildDir, 'last-run.md'), echoMd + '\n' + fs.readFileSync(mdFile, 'utf8'));
  console.log(`written: ${path.relative(root, path.join(buildDir, 'last-run.md'))} (echo and @diocp/jobs tables)`);
}

async function cleanupAndExit(code) {
  if (liveLoadgen) liveLoadgen.kill('SIGKILL');
  if (liveIdle) liveIdle.kill('SIGKILL');
  if (liveSubBench) liveSubBench.kill('SIGKILL');
  for (const srv of live) {
    const pid = srv.child.pid;
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  await sleep(300);
  for (const srv of live) if (srv.child.pid) killGroup(srv.child.pid, 'SIGKILL');
  process.exit(code);
}

process.on('SIGINT', () => cleanupAndExit(130));
process.on('SIGTERM', () => cleanupAndExit(143));

main().catch(async (e) => {
  process.stderr.write(`bench: ${e.stack || e}\n`);
  await cleanupAndExit(2);
});
