#!/usr/bin/env node
// The engine under AddressSanitizer (+ LeakSanitizer, UBSan), or under valgrind.
//
//   npm run test:asan -w packages/native-iocp            # the engine driver under ASan + LSan +
//                                                        # UBSan, then the addon under ASan
//                                                        # (scripts/asan-addon.mjs)
//   node packages/native-iocp/scripts/asan.mjs --engine-only  # the driver only
//   node packages/native-iocp/scripts/asan.mjs --valgrind  # the driver, plain -O1 -g build, under valgrind
//   node packages/native-iocp/scripts/asan.mjs --scale 3   # 3x the connections per scenario
//
// Builds fuzz/engine_driver.cc together with the engine's own sources (src/native/engine.cc,
// poller-epoll.cc: plain C++, no N-API, so no node and no addon are involved) into
// fuzz/.work/, then runs it: real sockets on 127.0.0.1, open / traffic / close cycles, RST
// in flight, mid-frame and with answers queued, bad frames, server-side closes, 1 MiB
// frames, 200 connections at once, idle timeout, send-queue bound, max connections, a slow
// owner (full event ring, throttled connections), the smallest ring, running out of
// descriptors (EMFILE, in a child process), a graceful shutdown and an abrupt teardown (see
// the driver's header). Exit status 0 = the
// driver's checks passed AND the sanitizer / valgrind reported no error and no leak.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(pkg, 'fuzz', '.work');
const sources = ['fuzz/engine_driver.cc', 'src/native/engine.cc', 'src/native/poller-epoll.cc'].map((f) => path.join(pkg, f));
const headers = fs.readdirSync(path.join(pkg, 'src', 'native')).filter((f) => f.endsWith('.h')).map((f) => path.join(pkg, 'src', 'native', f));

const args = process.argv.slice(2);
const valgrind = args.includes('--valgrind');
const engineOnly = args.includes('--engine-only');
const scaleAt = args.indexOf('--scale');
const scale = scaleAt >= 0 ? Number(args[scaleAt + 1]) : 1;
if (!Number.isInteger(scale) || scale < 1 || scale > 100) {
  console.error('asan: --scale must be an integer 1..100');
  process.exit(2);
}
for (const a of args) {
  if (!['--valgrind', '--engine-only', '--scale', String(scale)].includes(a)) {
    console.error(`asan: unknown argument ${a} (usage: asan.mjs [--valgrind] [--engine-only] [--scale N])`);
    process.exit(2);
  }
}

function build(bin, flags) {
  fs.mkdirSync(work, { recursive: true });
  let binTime = -1;
  try {
    binTime = fs.statSync(bin).mtimeMs;
  } catch {}
  const newest = Math.max(...[...sources, ...headers, fileURLToPath(import.meta.url)].map((f) => fs.statSync(f).mtimeMs));
  if (binTime >= newest) return;
  const cxx = process.env.CXX || 'clang++';
  const argv = ['-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-Wall', ...flags, '-o', bin, ...sources, '-lpthread'];
  console.log(`asan: building: ${cxx} ${argv.map((a) => (a.startsWith(pkg) ? path.relative(pkg, a) : a)).join(' ')}`);
  const r = spawnSync(cxx, argv, { stdio: 'inherit', timeout: 300_000 });
  if (r.error && r.error.code === 'ENOENT') {
    console.error(`asan: ${cxx} not found (install clang, or set CXX to a compiler with -fsanitize=address)`);
    process.exit(2);
  }
  if (r.status !== 0) {
    console.error(`asan: build failed (${cxx} exited with ${r.status ?? r.signal})`);
    process.exit(2);
  }
}

let r;
const t0 = Date.now();
if (valgrind) {
  const bin = path.join(work, 'engine_driver_plain');
  // DWARF 4: valgrind 3.19 cannot read clang 14's default DWARF 5.
  build(bin, ['-gdwarf-4']);
  const vg = [
    '--error-exitcode=99',
    '--leak-check=full',
    '--show-leak-kinds=definite,indirect,possible',
    '--errors-for-leak-kinds=definite,indirect,possible',
    '--track-fds=yes',
    bin,
    String(scale),
  ];
  console.log(`asan: valgrind ${vg.map((a) => (a.startsWith(pkg) ? path.relative(pkg, a) : a)).join(' ')}`);
  r = spawnSync('valgrind', vg, {
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
    timeout: 900_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ENGINE_DRIVER_VALGRIND: '1' },
  });
  if (r.error && r.error.code === 'ENOENT') {
    console.error('asan: valgrind is not installed');
    process.exit(2);
  }
  process.stderr.write(r.stderr ?? '');
  // --track-fds: every descriptor the driver opened must be closed at exit (stdio and
  // descriptors inherited from the parent aside).
  const leaked = (r.stderr ?? '')
    .split(/==\d+== Open (?:file descriptor|AF_\w+ socket) /)
    .slice(1)
    .filter((block) => !/^(0|1|2):/.test(block) && !/<inherited from parent>/.test(block.split(/==\d+== \n/)[0]));
  if (leaked.length > 0) {
    console.error(`asan: valgrind: ${leaked.length} descriptor(s) opened by the driver still open at exit`);
    if (r.status === 0) r.status = 98;
  }
} else {
  const bin = path.join(work, 'engine_driver_asan');
  build(bin, ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined']);
  const env = {
    ...process.env,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
  r = spawnSync(bin, [String(scale)], { stdio: 'inherit', env, timeout: 600_000 });
}
const secs = ((Date.now() - t0) / 1000).toFixed(1);
let failed = false;
if (r.status === 0) {
  console.log(`asan: engine driver under ${valgrind ? 'valgrind' : 'ASan + LSan + UBSan'}: no errors, no leaks, every check passed (${secs} s)`);
} else {
  console.error(`asan: engine driver FAILED under ${valgrind ? 'valgrind' : 'ASan + LSan + UBSan'} (exit ${r.status ?? r.signal}, ${secs} s)`);
  failed = true;
}
if (!valgrind && !engineOnly) {
  const a = spawnSync(process.execPath, [path.join(pkg, 'scripts', 'asan-addon.mjs')], { stdio: 'inherit', timeout: 900_000 });
  if (a.status !== 0) failed = true;
}
if (failed) process.exit(1);
