/**
 * Thousands of connect/close cycles and abrupt resets (RST) during traffic must leave no
 * descriptor and no memory behind in the server process.
 *
 * The server (a transport with an echo "gateway") runs in this test process, so its
 * descriptors are /proc/self/fd and its memory /proc/self/status VmRSS. The clients run in a
 * child process (a plain node:net script, below), so their sockets and buffers are not
 * counted. Per transport: a warm-up round (first allocations, pools, lazily opened fds, the
 * heap's working size), then
 * two measured rounds of the same work. After each round, once the transport reports no
 * connection and every onOpen had its onClose: descriptors must be back to the warm-up
 * level (a small tolerance for the runtime's own), RSS may not grow by more than
 * RSS_TOLERANCE over both rounds, and not by more in the second round than in the first plus
 * a margin (a leak grows with every round; allocator noise does not).
 *
 * Rounds: graceful cycles (connect, pipelined requests, all answers checked, FIN), RST while
 * answers are in flight, RST in the middle of a frame (the decoder holds a partial payload),
 * RST with large answers queued (the send queue is full), and bad frames (the transport
 * rejects and closes).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_SIZE, Flags, NetTransport, type CloseReason, type Frame, type Transport, type TransportEvents, type TransportOptions } from '@diocp/core';

const RSS_TOLERANCE = 24 * 1024 * 1024;
const ROUND_GROWTH_MARGIN = 8 * 1024 * 1024;
const FD_TOLERANCE = 4;

/** Work per round (the same in every round). */
const ROUND = {
  graceful: 1200, // connections: 8 pipelined 64 B requests each, every answer checked, then FIN
  resetInFlight: 600, // 32 requests of 1 KiB written, RST after the first answers arrive
  resetMidFrame: 300, // a header announcing 64 KiB and half of it, then RST
  resetQueued: 60, // 4 requests of 256 KiB, nothing read, RST after 20 ms
  badFrames: 200, // a frame with a bad magic: the transport rejects it and closes
  concurrency: 40,
};

// The client side, in its own process. Prints one JSON line: {errors, done, ms}.
const CLIENT = String.raw`
import net from 'node:net';
const [port, spec] = [Number(process.argv[1]), JSON.parse(process.argv[2])];
let errors = 0;
let firstError = null;
const err = (m) => { errors++; if (!firstError) firstError = m; };
function header(flags, command, requestId, length, magic = 0xd10c) {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(magic, 0); b[2] = 1; b[3] = flags; b.writeUInt16BE(command, 4);
  b.writeUInt32BE(requestId, 8); b.writeUInt32BE(length, 12);
  return b;
}
const frame = (id, payload) => Buffer.concat([header(0, 1, id, payload.length), payload]);
function connect() {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', (e) => { err('connect: ' + e.message); resolve(null); });
  });
}
const closed = (s) => new Promise((r) => (s.destroyed && s.closed ? r() : s.once('close', r)));
async function graceful() {
  const s = await connect(); if (!s) return;
  s.on('error', (e) => err('graceful: ' + e.message));
  const want = 8, p = Buffer.alloc(64, 7);
  let buf = Buffer.alloc(0), got = 0;
  const done = new Promise((resolve) => {
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32BE(12)) {
        const len = buf.readUInt32BE(12);
        if (buf[3] !== 1 || buf.readUInt16BE(6) !== 0 || buf.readUInt32BE(8) !== got + 1 || len !== 64) err('graceful: bad answer');
        buf = buf.subarray(16 + len); got++;
      }
      if (got === want) resolve();
    });
    s.on('close', resolve);
  });
  s.write(Buffer.concat(Array.from({ length: want }, (_, i) => frame(i + 1, p))));
  await done;
  if (got !== want) err('graceful: ' + got + ' of ' + want + ' answers');
  s.end();
  await closed(s);
}
async function resetInFlight() {
  const s = await connect(); if (!s) return;
  s.on('error', () => {});
  const p = Buffer.alloc(1024, 3);
  await new Promise((resolve) => {
    s.once('data', resolve);
    s.once('close', resolve);
    s.write(Buffer.concat(Array.from({ length: 32 }, (_, i) => frame(i + 1, p))));
  });
  s.resetAndDestroy();
  await closed(s);
}
async function resetMidFrame() {
  const s = await connect(); if (!s) return;
  s.on('error', () => {});
  s.write(Buffer.concat([header(0, 1, 1, 65536), Buffer.alloc(32768, 9)]));
  await new Promise((r) => setTimeout(r, 2));
  s.resetAndDestroy();
  await closed(s);
}
async function resetQueued() {
  const s = await connect(); if (!s) return;
  s.on('error', () => {});
  s.pause(); // read nothing: the answers pile up on the server
  const p = Buffer.alloc(256 * 1024, 5);
  for (let i = 0; i < 4; i++) s.write(frame(i + 1, p));
  await new Promise((r) => setTimeout(r, 20));
  s.resetAndDestroy();
  await closed(s);
}
async function badFrame() {
  const s = await connect(); if (!s) return;
  s.on('error', () => {});
  s.resume();
  s.write(Buffer.concat([header(0, 1, 1, 4, 0xbeef), Buffer.alloc(4)]));
  await closed(s); // the server closes it
}
async function pool(n, fn) {
  let next = 0;
  const worker = async () => { while (next < n) { next++; await fn(); } };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, n) }, worker));
}
const t0 = Date.now();
await pool(spec.graceful, graceful);
await pool(spec.resetInFlight, resetInFlight);
await pool(spec.resetMidFrame, resetMidFrame);
await pool(spec.resetQueued, resetQueued);
await pool(spec.badFrames, badFrame);
const done = spec.graceful + spec.resetInFlight + spec.resetMidFrame + spec.resetQueued + spec.badFrames;
console.log(JSON.stringify({ errors, firstError, done, ms: Date.now() - t0 }));
`;

function runClients(port: number, spec: typeof ROUND): Promise<{ errors: number; firstError: string | null; done: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, String(port), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (errText += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`client process failed (exit ${code}): ${errText.slice(-2000)}`));
      }
    });
  });
}

const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
function rssBytes(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 30));
  }
}

/** Echo gateway: answers every request, rejects bad frames, tracks open/close pairs. */
class EchoEvents implements TransportEvents {
  open = new Set<number>();
  opened = 0;
  closedBy: Record<string, number> = {};
  constructor(private readonly t: () => Transport) {}
  onOpen(conn: number): void {
    this.open.add(conn);
    this.opened++;
  }
  onFrames(conn: number, frames: Frame[]): void {
    for (const f of frames) this.t().send(conn, Flags.RESPONSE, f.command, 0, f.requestId, f.payload);
  }
  onProtocolError(conn: number, error: { command: number; requestId: number; code: string }): void {
    this.t().send(conn, Flags.RESPONSE | Flags.ERROR, error.command, 1, error.requestId, Buffer.from(error.code));
    this.t().close(conn);
  }
  onClose(conn: number, reason: CloseReason): void {
    this.open.delete(conn);
    this.closedBy[reason] = (this.closedBy[reason] ?? 0) + 1;
  }
}

async function untilQuiet(t: Transport, ev: EchoEvents, expectedOpened: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (ev.opened >= expectedOpened && ev.open.size === 0 && t.stats().connections === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`connections still open: ${ev.open.size} by events, ${t.stats().connections} by stats; opened ${ev.opened} of ${expectedOpened}`);
}

const perRound = ROUND.graceful + ROUND.resetInFlight + ROUND.resetMidFrame + ROUND.resetQueued + ROUND.badFrames;

export function leakSuite(name: string, make: (options: TransportOptions) => Transport): void {
  describe(`no leaks after connect/close and RST cycles: ${name}`, () => {
    let transport: Transport | null = null;
    afterEach(async () => {
      await transport?.shutdown();
      transport = null;
    });

    it(`${perRound * 2} measured connections (${ROUND.resetInFlight + ROUND.resetMidFrame + ROUND.resetQueued} RST per round) leave fds and RSS where they were`, async () => {
      const t = make({
        host: '127.0.0.1',
        port: 0,
        maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
        maxConnections: 10_000,
        idleTimeoutMs: 0,
        maxSendQueueBytes: 2 * DEFAULT_MAX_FRAME_SIZE,
      });
      transport = t;
      const ev = new EchoEvents(() => t);
      const { port } = await t.listen(ev);

      // Warm-up: one round of the same work (heap and allocator pools reach their working size).
      const w = await runClients(port, ROUND);
      expect(w.errors, w.firstError ?? '').toBe(0);
      let expected = w.done;
      await untilQuiet(t, ev, expected);
      await settle();
      const fd0 = fdCount();
      const rss0 = rssBytes();

      const rss: number[] = [];
      const fds: number[] = [];
      for (let round = 0; round < 2; round++) {
        const r = await runClients(port, ROUND);
        expect(r.errors, r.firstError ?? '').toBe(0);
        expect(r.done).toBe(perRound);
        expected += r.done;
        await untilQuiet(t, ev, expected);
        await settle();
        fds.push(fdCount());
        rss.push(rssBytes());
      }
      const s = t.stats();
      const detail = `${name}: fds ${fd0} -> ${fds.join(' -> ')}, RSS MiB ${(rss0 / 2 ** 20).toFixed(1)} -> ${rss.map((x) => (x / 2 ** 20).toFixed(1)).join(' -> ')}, closed ${JSON.stringify(ev.closedBy)}`;
      // Every connection was seen and closed, by the events and by the counters.
      expect(ev.opened, detail).toBe(expected);
      expect(s.accepted, detail).toBe(expected);
      expect(s.connections, detail).toBe(0);
      expect(ev.closedBy.peer ?? 0, detail).toBeGreaterThan(0);
      // No descriptor left behind.
      for (const f of fds) expect(f, detail).toBeLessThanOrEqual(fd0 + FD_TOLERANCE);
      // No memory that grows with the connections.
      expect(rss[1] - rss0, detail).toBeLessThan(RSS_TOLERANCE);
      expect(rss[1] - rss[0], detail).toBeLessThan(Math.max(0, rss[0] - rss0) + ROUND_GROWTH_MARGIN);
      console.log(detail);
    });
  });
}

leakSuite('net (control)', (options) => new NetTransport(options));
