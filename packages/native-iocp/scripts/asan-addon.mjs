#!/usr/bin/env node
// The addon itself (binding.cc: N-API, block references handed to JavaScript ArrayBuffers and
// released by their finalizers, the uv_async wake-up, dispose) under AddressSanitizer, loaded
// into a normal node with the ASan runtime preloaded. Complements scripts/asan.mjs, which
// covers the engine without node.
//
//   npm run test:asan -w packages/native-iocp -- --addon    (or: node scripts/asan-addon.mjs)
//
// 1. Compiles src/native/{binding,engine,poller-epoll}.cc with clang++ -fsanitize=address
//    -shared-libasan into fuzz/.work/asan-pkg/build/Release/diocp_native.node, next to a copy
//    of dist/ and package.json: the package's own loader (dist/loader.js) then loads the ASan
//    build, through the same TS wrapper (createTransport) as an application.
// 2. Runs this file again as the workload (`--workload`) under
//    LD_PRELOAD=<clang's libclang_rt.asan-x86_64.so>: an echo server on the native transport
//    and node:net clients in the same process: graceful cycles, RST with answers in flight,
//    RST mid-frame, RST with large answers queued, bad frames, 1 MiB echoes; then shutdown,
//    every reference dropped, several GCs (block finalizers run), exit.
// 3. Passes when ASan reported no error, and LeakSanitizer no leak whose stack goes through
//    the addon's sources (node and V8 keep memory on purpose at exit; those reports are
//    counted, not failed: they are not ours).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(pkg, 'fuzz', '.work', 'asan-pkg');

if (process.argv.includes('--workload')) {
  await workload();
} else {
  main();
}

function main() {
  if (!fs.existsSync(path.join(pkg, 'dist', 'index.js'))) {
    console.error('asan-addon: dist/ is missing: run npm run build first');
    process.exit(2);
  }
  // A copy of the package whose build/Release holds the ASan addon.
  fs.rmSync(path.join(work, 'dist'), { recursive: true, force: true });
  fs.mkdirSync(path.join(work, 'build', 'Release'), { recursive: true });
  fs.cpSync(path.join(pkg, 'dist'), path.join(work, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(pkg, 'package.json'), path.join(work, 'package.json'));
  const napiInclude = path.dirname(fileURLToPath(import.meta.resolve('node-addon-api/package.json')));
  const nodeInclude = ['/usr/include/node', path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node')].find((d) =>
    fs.existsSync(path.join(d, 'node_api.h')),
  );
  if (!nodeInclude) {
    console.error('asan-addon: node headers (node_api.h) not found in /usr/include/node or next to node');
    process.exit(2);
  }
  const cxx = process.env.CXX || 'clang++';
  const out = path.join(work, 'build', 'Release', 'diocp_native.node');
  const args = [
    '-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-fsanitize=address', '-shared-libasan', '-fPIC', '-shared',
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', `-I${nodeInclude}`, `-I${napiInclude}`,
    ...['binding.cc', 'engine.cc', 'poller-epoll.cc'].map((f) => path.join(pkg, 'src', 'native', f)),
    '-o', out,
  ];
  console.log(`asan-addon: building: ${cxx} ${args.map((a) => (a.startsWith(pkg) ? path.relative(pkg, a) : a)).join(' ')}`);
  const b = spawnSync(cxx, args, { stdio: 'inherit', timeout: 300_000 });
  if (b.status !== 0) {
    console.error(`asan-addon: build failed (${cxx} exited with ${b.status ?? b.signal})`);
    process.exit(2);
  }
  const rt = spawnSync(process.env.CC || 'clang', ['-print-file-name=libclang_rt.asan-x86_64.so'], { encoding: 'utf8' }).stdout.trim();
  if (!rt || !fs.existsSync(rt)) {
    console.error('asan-addon: the ASan runtime (libclang_rt.asan-x86_64.so) was not found');
    process.exit(2);
  }
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--workload'], {
    cwd: pkg,
    env: {
      ...process.env,
      LD_PRELOAD: rt,
      // Leaks are reported at exit and judged below (exitcode 0: the report decides, not LSan).
      ASAN_OPTIONS: 'detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1',
      LSAN_OPTIONS: 'exitcode=0:max_leaks=500',
      DIOCP_ASAN_PKG: work,
    },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 600_000,
  });
  process.stdout.write(r.stdout ?? '');
  const err = r.stderr ?? '';
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const asanError = /ERROR: AddressSanitizer/.test(err);
  // LeakSanitizer blocks: "Direct leak of N byte(s) in K object(s) allocated from:" + frames.
  const blocks = err.split(/\n(?=(?:Direct|Indirect) leak of )/).filter((b) => /^(Direct|Indirect) leak of /.test(b));
  const ours = blocks.filter((b) => /src\/native\/|diocp_native\.node|diocp::/.test(b));
  if (asanError || r.status !== 0 || ours.length > 0) {
    process.stderr.write(asanError || r.status !== 0 ? err.slice(-20_000) : ours.join('\n'));
    console.error(
      `asan-addon: FAILED (${asanError ? 'AddressSanitizer error' : r.status !== 0 ? `workload exit ${r.status ?? r.signal}` : `${ours.length} leak(s) through the addon's sources`}, ${secs} s)`,
    );
    process.exit(1);
  }
  console.log(
    `asan-addon: no AddressSanitizer error; no leak through the addon's sources ` +
      `(${blocks.length} LeakSanitizer report(s) at exit, all in node/V8 itself) (${secs} s)`,
  );
}

// ---------------------------------------------------------------- the workload (ASan process)

async function workload() {
  const pkgDir = process.env.DIOCP_ASAN_PKG;
  const { createTransport } = await import(pathToFileURL(path.join(pkgDir, 'dist', 'index.js')).href);
  const RESPONSE = 0x01;
  const ERROR = 0x02;
  let transport = createTransport({
    host: '127.0.0.1',
    port: 0,
    maxFrameSize: 16 * 1024 * 1024,
    maxConnections: 10_000,
    idleTimeoutMs: 0,
    maxSendQueueBytes: 32 * 1024 * 1024,
  });
  let opened = 0;
  let closed = 0;
  let frames = 0;
  let protocolErrors = 0;
  const { port } = await transport.listen({
    onOpen() {
      opened++;
    },
    onFrames(conn, fs_) {
      frames += fs_.length;
      for (const f of fs_) {
        if (f.command === 3) transport.send(conn, RESPONSE, 3, 0, f.requestId, Buffer.alloc(f.payload.readUInt32BE(0), 0x5a));
        else transport.send(conn, RESPONSE, f.command, 0, f.requestId, f.payload);
      }
    },
    onProtocolError(conn, e) {
      protocolErrors++;
      transport.send(conn, RESPONSE | ERROR, e.command, 1, e.requestId, Buffer.from(e.code));
      transport.close(conn);
    },
    onClose() {
      closed++;
    },
  });

  const header = (flags, command, id, length, magic = 0xd10c) => {
    const b = Buffer.alloc(16);
    b.writeUInt16BE(magic, 0);
    b[2] = 1;
    b[3] = flags;
    b.writeUInt16BE(command, 4);
    b.writeUInt32BE(id, 8);
    b.writeUInt32BE(length, 12);
    return b;
  };
  const frame = (command, id, payload) => Buffer.concat([header(0, command, id, payload.length), payload]);
  const connect = () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  const closedP = (s) => new Promise((r) => (s.closed ? r() : s.once('close', r)));
  const readBytes = (s, n) =>
    new Promise((resolve) => {
      let got = 0;
      const on = (d) => {
        got += d.length;
        if (got >= n) {
          s.off('data', on);
          resolve(got);
        }
      };
      s.on('data', on);
      s.once('close', () => resolve(got));
    });
  let errors = 0;
  const cycles = {
    async graceful() {
      const s = await connect();
      const p = Buffer.alloc(64, 1);
      const want = 8 * (16 + 64);
      const got = readBytes(s, want);
      s.write(Buffer.concat(Array.from({ length: 8 }, (_, i) => frame(1, i + 1, p))));
      if ((await got) < want) errors++;
      s.end();
      await closedP(s);
    },
    async resetInFlight() {
      const s = await connect();
      s.on('error', () => {});
      const got = readBytes(s, 1);
      s.write(Buffer.concat(Array.from({ length: 32 }, (_, i) => frame(1, i + 1, Buffer.alloc(1024, 2)))));
      await got;
      s.resetAndDestroy();
      await closedP(s);
    },
    async resetMidFrame() {
      const s = await connect();
      s.on('error', () => {});
      s.write(Buffer.concat([header(0, 1, 1, 65536), Buffer.alloc(30_000, 3)]));
      await new Promise((r) => setTimeout(r, 2));
      s.resetAndDestroy();
      await closedP(s);
    },
    async resetQueued() {
      const s = await connect();
      s.on('error', () => {});
      s.pause();
      const n = Buffer.alloc(4);
      n.writeUInt32BE(1024 * 1024);
      for (let i = 0; i < 4; i++) s.write(frame(3, i + 1, n));
      await new Promise((r) => setTimeout(r, 20));
      s.resetAndDestroy();
      await closedP(s);
    },
    async badFrame() {
      const s = await connect();
      s.on('error', () => {});
      s.resume();
      s.write(Buffer.concat([header(0, 1, 1, 4, 0xbeef), Buffer.alloc(4)]));
      await closedP(s);
    },
    async bigEcho() {
      const s = await connect();
      const big = Buffer.alloc(1024 * 1024, 7);
      const got = readBytes(s, 16 + big.length);
      s.write(frame(1, 1, big));
      if ((await got) < 16 + big.length) errors++;
      s.end();
      await closedP(s);
    },
  };
  const plan = { graceful: 400, resetInFlight: 200, resetMidFrame: 100, resetQueued: 20, badFrame: 60, bigEcho: 6 };
  const t0 = Date.now();
  let total = 0;
  for (let round = 0; round < 3; round++) {
    for (const [name, n] of Object.entries(plan)) {
      let next = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          await cycles[name]();
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
      total += n;
    }
  }
  const deadline = Date.now() + 10_000;
  while (closed < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await transport.shutdown();
  transport = null;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(
    `asan-addon: workload: ${total} connections (opened ${opened}, closed ${closed}), ${frames} frames, ${protocolErrors} protocol errors, ` +
      `${errors} short answers, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (opened !== total || closed !== total || errors > 0 || protocolErrors !== plan.badFrame * 3) process.exit(3);
  process.exit(0);
}
