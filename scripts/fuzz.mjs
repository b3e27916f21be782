#!/usr/bin/env node
// Fuzz/soak run, not part of `npm test`: starts the example server (node:net transport, or the
// native one with --transport native),
// then for a bounded time throws random bytes, mutated frames and torn writes at it from many
// connections while well-behaved clients keep checking that echo still works. Fails when a
// good request fails, the server dies, or its memory keeps growing.
//
//   node scripts/fuzz.mjs [--seconds 30] [--connections 50] [--transport net|native]
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, encodeFrame } from '@diocp/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '30' }, connections: { type: 'string', default: '50' }, transport: { type: 'string', default: 'net' } },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (!(seconds > 0 && seconds <= 3600) || !(connections > 0 && connections <= 2000)) {
  console.error('fuzz: --seconds must be in (0, 3600] and --connections in (0, 2000]');
  process.exit(2);
}
if (values.transport !== 'net' && values.transport !== 'native') {
  console.error(`fuzz: --transport must be net or native, not ${values.transport}`);
  process.exit(2);
}

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn(process.execPath, [path.join(root, 'packages/core/bin/diocp.js'), 'start', '--port', String(port), '--transport', values.transport, '--log-level', 'error'], {
  cwd: path.join(root, 'templates/default'),
  stdio: ['ignore', 'ignore', 'inherit'],
});
let serverDied = null;
server.on('exit', (code, signal) => (serverDied = `server exited (code ${code}, signal ${signal})`));

for (let i = 0; ; i++) {
  try {
    const c = await connect({ port });
    await c.close();
    break;
  } catch {
    if (i > 100 || serverDied) throw new Error(serverDied ?? 'server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rand = (n) => Math.floor(Math.random() * n);
function junk() {
  const kind = rand(5);
  const good = encodeFrame(0, 1 + rand(4), 0, rand(1000), Buffer.alloc(rand(200), 0x61));
  switch (kind) {
    case 0: // random bytes
      return Buffer.from(Array.from({ length: 1 + rand(300) }, () => rand(256)));
    case 1: // one flipped byte in a header
      good[rand(16)] ^= 1 << rand(8);
      return good;
    case 2: // huge announced length
      good.writeUInt32BE(0x7fffffff + rand(1000), 12);
      return good.subarray(0, 16);
    case 3: // valid frames (raw bytes to JSON commands: BAD_REQUEST)
      return Buffer.concat([good, encodeFrame(0, 2, 0, 1, Buffer.from('{oops'))]);
    default: // a torn frame, never finished
      return good.subarray(0, rand(good.length));
  }
}

async function attacker(deadline) {
  let sent = 0;
  while (Date.now() < deadline && !serverDied) {
    await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.on('data', () => {});
      s.on('connect', () => {
        for (let i = 0; i < 1 + rand(5); i++) {
          const bytes = junk();
          // Torn writes: split at random points.
          const cut = rand(bytes.length);
          s.write(bytes.subarray(0, cut));
          s.write(bytes.subarray(cut));
          sent++;
        }
        setTimeout(() => s.destroy(), rand(50));
      });
      s.on('close', resolve);
    });
  }
  return sent;
}

let good = 0;
let bad = 0;
async function checker(deadline) {
  const c = await connect({ port, timeoutMs: 5000 });
  while (Date.now() < deadline && !serverDied) {
    const payload = Buffer.from(Array.from({ length: rand(100) }, () => rand(256)));
    try {
      const reply = await c.request(1, payload);
      if (Buffer.compare(reply, payload) === 0) good++;
      else bad++;
    } catch (err) {
      bad++;
      console.error('good request failed:', err.message);
    }
  }
  await c.close();
}

const rssOf = async () => {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${server.pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
};
const deadline = Date.now() + seconds * 1000;
const rss = [];
const progress = setInterval(async () => {
  const r = await rssOf();
  rss.push(r);
  const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
  process.stdout.write(`\rfuzz: ${left}s left, good echoes ${good}, failed ${bad}, server RSS ${(r / 1048576).toFixed(1)} MiB   `);
}, 1000);
const results = await Promise.all([
  ...Array.from({ length: connections }, () => attacker(deadline)),
  checker(deadline),
  checker(deadline),
]);
clearInterval(progress);
const junkSent = results.slice(0, connections).reduce((a, b) => a + b, 0);
process.stdout.write('\n');
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));

const half = rss.slice(Math.floor(rss.length / 2));
const growth = half.length > 1 ? half.at(-1) - half[0] : 0;
console.log(`fuzz: ${junkSent} hostile writes, ${good} good echoes, ${bad} failed; RSS growth over the second half ${(growth / 1048576).toFixed(1)} MiB`);
const failed = bad > 0 || good === 0 || (serverDied && !/signal SIGTERM|code 0/.test(serverDied)) || growth > 64 * 1048576;
if (failed) {
  console.error('fuzz: FAILED', serverDied ?? '');
  process.exit(1);
}
console.log('fuzz: passed');
