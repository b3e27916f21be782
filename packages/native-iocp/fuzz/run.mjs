#!/usr/bin/env node
// Fuzz the native frame decoder (src/native/decoder.h) with libFuzzer + ASan + UBSan.
//
//   npm run fuzz:native -- 60          # 60 s (default 60)
//   node packages/native-iocp/fuzz/run.mjs 600 [--fresh] [--only-regressions]
//
// 1. Builds fuzz/decoder_fuzz.cc with clang++ -fsanitize=fuzzer,address,undefined into
//    fuzz/.work/decoder_fuzz (fuzz/.work/ is gitignored: binary, corpus, artifacts).
// 2. Writes the seed corpus (valid, split, sticky and bad frames, each under several
//    configurations) into fuzz/.work/seeds: generated here, never committed as binaries.
// 3. Runs every input in fuzz/regressions/*.hex (inputs that once broke an invariant, as hex
//    text) and a set of large generated inputs (frames of 70 KiB to 1 MiB cut into many
//    chunks: the payload buffer's growth steps, beyond what -max_len=8192 lets the fuzzer
//    reach): each must pass.
// 4. Fuzzes for the given seconds, corpus in fuzz/.work/corpus (kept between runs; --fresh
//    starts over), crashes to fuzz/.work/artifacts/.
// Prints the result (executions, corpus size, coverage, crashes) and writes it to
// fuzz/.work/last-run.json. Exit status 0 = no crash, 1 = a crash or a failing regression
// (the input is in fuzz/.work/artifacts/; turn it into a regression with --to-hex FILE).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const fuzzDir = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(fuzzDir, '.work');
const bin = path.join(work, 'decoder_fuzz');
const src = path.join(fuzzDir, 'decoder_fuzz.cc');
const header = path.join(fuzzDir, '..', 'src', 'native', 'decoder.h');
const seedsDir = path.join(work, 'seeds');
const corpusDir = path.join(work, 'corpus');
const artifactsDir = path.join(work, 'artifacts');
const regressionsDir = path.join(fuzzDir, 'regressions');

function fail(msg) {
  process.stderr.write(`fuzz: ${msg}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.includes('--to-hex')) {
  const file = args[args.indexOf('--to-hex') + 1];
  if (!file) fail('--to-hex needs a file');
  process.stdout.write(fs.readFileSync(file).toString('hex').replace(/(.{64})/g, '$1\n').trim() + '\n');
  process.exit(0);
}
const fresh = args.includes('--fresh');
const onlyRegressions = args.includes('--only-regressions');
const secsArg = args.find((a) => /^\d+$/.test(a));
const unknown = args.filter((a) => a !== secsArg && !['--fresh', '--only-regressions'].includes(a));
if (unknown.length) fail(`unknown argument ${unknown[0]} (usage: run.mjs [SECONDS] [--fresh] [--only-regressions] | --to-hex FILE)`);
const seconds = secsArg ? Number(secsArg) : 60;
if (!(seconds >= 1 && seconds <= 86_400)) fail('SECONDS must be 1..86400');

// ------------------------------------------------------------------ build

function build() {
  fs.mkdirSync(work, { recursive: true });
  if (!fs.existsSync(header)) fail(`${path.relative(process.cwd(), header)} is missing: nothing to fuzz`);
  let binTime = -1;
  try {
    binTime = fs.statSync(bin).mtimeMs;
  } catch {}
  if (binTime >= Math.max(fs.statSync(src).mtimeMs, fs.statSync(header).mtimeMs)) return;
  const cxx = process.env.FUZZ_CXX || 'clang++';
  const flags = ['-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined', '-Wall', '-Wextra', '-o', bin, src];
  console.log(`fuzz: building: ${cxx} ${flags.map((f) => (f.startsWith('/') ? path.relative(process.cwd(), f) : f)).join(' ')}`);
  const r = spawnSync(cxx, flags, { stdio: 'inherit', timeout: 300_000 });
  if (r.error && r.error.code === 'ENOENT') fail(`${cxx} not found: install clang (with libFuzzer: the clang package's compiler-rt) or set FUZZ_CXX`);
  if (r.status !== 0) fail(`build failed (${cxx} exited with ${r.status ?? r.signal})`);
}

// ------------------------------------------------------------------ seeds

// Input layout (decoder_fuzz.cc): byte 0 = configuration (bits 0-2 limit index, bit 3 client
// side, bits 4-5 chunking mode), bytes 1-4 = chunking seed, then the stream.
function frame(flags, command, status, requestId, payload, { magic = 0xd10c, version = 1, length = payload.length } = {}) {
  const b = Buffer.alloc(16 + payload.length);
  b.writeUInt16BE(magic, 0);
  b[2] = version;
  b[3] = flags;
  b.writeUInt16BE(command, 4);
  b.writeUInt16BE(status, 6);
  b.writeUInt32BE(requestId >>> 0, 8);
  b.writeUInt32BE(length >>> 0, 12);
  Buffer.from(payload).copy(b, 16);
  return b;
}

function seeds() {
  const p64 = Buffer.alloc(64, 0x61);
  const streams = {
    'one-request': frame(0, 1, 0, 1, p64),
    'empty-payload': frame(0, 2, 0, 7, Buffer.alloc(0)),
    'oneway': frame(0x08, 3, 0, 0, Buffer.from('fire and forget')),
    'ping': frame(0, 0xffff, 0, 9, Buffer.from('PING\0\0\0\x09', 'latin1')),
    'sticky-16': Buffer.concat(Array.from({ length: 16 }, (_, i) => frame(0, 1, 0, i + 1, p64))),
    'sticky-mixed': Buffer.concat([frame(0, 1, 0, 1, Buffer.alloc(0)), frame(0, 2, 0, 2, Buffer.alloc(300, 1)), frame(0x08, 3, 0, 0, Buffer.alloc(5, 2))]),
    'split-tail': Buffer.concat([frame(0, 1, 0, 1, p64), frame(0, 1, 0, 2, p64).subarray(0, 40)]),
    'partial-header': frame(0, 1, 0, 1, p64).subarray(0, 7),
    'large-1000': frame(0, 1, 0, 1, Buffer.alloc(1000, 0x7a)),
    'bad-magic': Buffer.concat([frame(0, 1, 0, 1, p64), frame(0, 1, 0, 2, p64, { magic: 0xbeef })]),
    'bad-magic-second-byte': Buffer.from([0xd1, 0x0d, 1, 0]),
    'bad-version': Buffer.concat([frame(0, 1, 0, 1, p64), frame(0, 1, 0, 2, p64, { version: 2 })]),
    'reserved-flag': frame(0x10, 1, 0, 5, p64),
    'bad-direction': frame(0x01, 1, 0, 5, p64),
    'push-from-client': frame(0x04, 1, 0, 0, p64),
    'too-large': Buffer.concat([frame(0, 1, 0, 1, p64), frame(0, 1, 0, 2, Buffer.alloc(0), { length: 0xffffffff })]),
    'too-large-by-one': frame(0, 1, 0, 3, Buffer.alloc(65), {}),
  };
  const configs = [
    [4, 0], // limit 64, server, random 1..64 chunks
    [7, 0x10], // 16 MiB, single bytes
    [5, 0x20], // 1000, random up to 4096
    [6, 0x30], // 65536, one cut
    [0, 0x00], // limit 0
    [7, 0x08], // client side
  ];
  fs.rmSync(seedsDir, { recursive: true, force: true });
  fs.mkdirSync(seedsDir, { recursive: true });
  let n = 0;
  for (const [name, stream] of Object.entries(streams)) {
    for (const [limit, bits] of configs) {
      const head = Buffer.from([limit | bits, 0x12, 0x34, 0x56, 0x78 ^ n]);
      fs.writeFileSync(path.join(seedsDir, `${name}-${limit}-${bits.toString(16)}`), Buffer.concat([head, stream]));
      n++;
    }
  }
  return n;
}

// ------------------------------------------------------------------ large inputs

// Payloads over the decoder's first 64 KiB growth step, split into many chunks, so that the
// growth (doubling up to the announced length) runs under the same invariants.
function largeInputs() {
  const dir = path.join(work, 'large');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const body = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + seed) & 0xff));
  const streams = {
    '70k': frame(0, 1, 0, 1, body(70 * 1024, 1)),
    '200k': frame(0, 1, 0, 2, body(200 * 1024, 2)),
    '1m': frame(0, 1, 0, 3, body(1024 * 1024, 3)),
    'two-sticky': Buffer.concat([frame(0, 1, 0, 4, body(130 * 1024, 4)), frame(0, 2, 0, 5, body(65 * 1024, 5)), frame(0, 3, 0, 6, Buffer.alloc(0))]),
    'big-then-bad': Buffer.concat([frame(0, 1, 0, 7, body(100 * 1024, 6)), frame(0x10, 1, 0, 8, body(10, 7))]),
    'big-partial': frame(0, 1, 0, 9, body(300 * 1024, 8)).subarray(0, 150 * 1024),
    'too-large-for-limit': frame(0, 1, 0, 10, body(70 * 1024, 9)), // limit 65536 below
  };
  const files = [];
  for (const [name, stream] of Object.entries(streams)) {
    // 16 MiB limit (65536 for the last), chunk modes: random 1..64, random 1..4096, one cut.
    for (const mode of [0x00, 0x20, 0x30]) {
      const limit = name === 'too-large-for-limit' ? 6 : 7;
      const file = path.join(dir, `${name}-${mode.toString(16)}`);
      fs.writeFileSync(file, Buffer.concat([Buffer.from([limit | mode, 0x9e, 0x37, 0x79, 0xb9]), stream]));
      files.push(file);
    }
  }
  return files;
}

// ------------------------------------------------------------------ regressions

function regressionFiles() {
  if (!fs.existsSync(regressionsDir)) return [];
  const out = path.join(work, 'regressions');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  return fs
    .readdirSync(regressionsDir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => {
      const hex = fs
        .readFileSync(path.join(regressionsDir, f), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('')
        .replace(/\s+/g, '');
      const file = path.join(out, f.replace(/\.hex$/, '.bin'));
      fs.writeFileSync(file, Buffer.from(hex, 'hex'));
      return file;
    });
}

function run(argv, { echo }) {
  return new Promise((resolve) => {
    const child = spawn(bin, argv, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const onData = (d) => {
      text += d;
      if (text.length > 4_000_000) text = text.slice(-2_000_000);
      if (echo) process.stdout.write(d);
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    const stop = () => child.kill('SIGINT');
    process.once('SIGINT', stop);
    child.on('close', (code, signal) => {
      process.removeListener('SIGINT', stop);
      resolve({ code, signal, text });
    });
  });
}

// ------------------------------------------------------------------ main

async function main() {
  build();
  const nSeeds = seeds();
  if (fresh) fs.rmSync(corpusDir, { recursive: true, force: true });
  fs.mkdirSync(corpusDir, { recursive: true });
  fs.mkdirSync(artifactsDir, { recursive: true });

  const regs = regressionFiles();
  const large = largeInputs();
  console.log(`fuzz: ${regs.length} regression input(s) from fuzz/regressions/, ${large.length} large generated input(s)`);
  const pre = await run([...regs, ...large], { echo: false });
  if (pre.code !== 0) {
    process.stdout.write(pre.text);
    console.error(`fuzz: a regression or large input fails (exit ${pre.code ?? pre.signal})`);
    process.exit(1);
  }
  console.log('fuzz: every regression and large input passes');
  if (onlyRegressions) return;

  const corpusBefore = fs.readdirSync(corpusDir).length;
  console.log(`fuzz: ${nSeeds} seeds, corpus ${corpusBefore} file(s) from earlier runs; fuzzing for ${seconds} s ...`);
  const t0 = Date.now();
  const r = await run(
    [
      corpusDir,
      seedsDir,
      `-max_total_time=${seconds}`,
      '-max_len=8192',
      '-use_value_profile=1',
      '-print_final_stats=1',
      '-print_pcs=0',
      `-artifact_prefix=${artifactsDir}/`,
      '-timeout=10',
      '-rss_limit_mb=2048',
    ],
    { echo: true },
  );
  const wall = (Date.now() - t0) / 1000;
  const stat = (name) => {
    const m = new RegExp(`stat::${name}:\\s+(\\d+)`).exec(r.text);
    return m ? Number(m[1]) : null;
  };
  const lastStatus = [...r.text.matchAll(/#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)\/(\S+)/g)].pop();
  const artifacts = fs.readdirSync(artifactsDir).filter((f) => /^(crash|leak|timeout|oom)-/.test(f));
  const result = {
    date: new Date().toISOString(),
    seconds,
    wallSeconds: wall,
    exitCode: r.code,
    executions: stat('number_of_executed_units'),
    execsPerSecond: stat('average_exec_per_sec'),
    peakRssMb: stat('peak_rss_mb'),
    newUnits: stat('new_units_added'),
    coverage: lastStatus ? Number(lastStatus[2]) : null,
    features: lastStatus ? Number(lastStatus[3]) : null,
    corpusFiles: fs.readdirSync(corpusDir).length,
    corpusSize: lastStatus ? lastStatus[5] : null,
    seeds: nSeeds,
    regressions: regs.length,
    largeInputs: large.length,
    crashed: r.code !== 0,
    artifacts,
  };
  fs.writeFileSync(path.join(work, 'last-run.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('');
  console.log(
    `fuzz: ${r.code === 0 ? 'no crash' : `CRASH (exit ${r.code ?? r.signal})`}: ${result.executions ?? '?'} executions in ${seconds} s ` +
      `(${result.execsPerSecond ?? '?'}/s), coverage ${result.coverage ?? '?'} edges, ${result.features ?? '?'} features, ` +
      `corpus ${result.corpusFiles} files (${result.corpusSize ?? '?'}), ${nSeeds} seeds, ${regs.length} regression input(s), peak RSS ${result.peakRssMb ?? '?'} MB`,
  );
  if (artifacts.length) console.log(`fuzz: artifacts in ${path.relative(process.cwd(), artifactsDir)}: ${artifacts.join(', ')}`);
  console.log(`fuzz: written ${path.relative(process.cwd(), path.join(work, 'last-run.json'))}`);
  if (r.code !== 0) process.exit(1);
}

main().catch((e) => {
  console.error(`fuzz: ${e.stack || e}`);
  process.exit(2);
});
