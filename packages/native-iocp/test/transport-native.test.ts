/**
 * What the native transport does beyond the shared conformance suite: the error frame it
 * answers itself (once), batching across connections, send blocks, reassembly of big
 * frames, payloads that stay valid, backpressure, listen errors, shutdown, counters.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeHooks } from '../../core/src/transport/select-transport.js';
import { encodeFrame, Flags } from '../../core/src/index.js';
import { errorBody, eventually, RawPeer } from '../../core/test/fixtures/wire.js';
import { createTransport, NativeTransport, NativeTransportError, type Frame, type NativeTransportOptions, type ProtocolErrorLike, type TransportEvents, type TransportOptions } from '../src/index.js';

const base: TransportOptions = {
  host: '127.0.0.1',
  port: 0,
  maxFrameSize: 16 * 1024 * 1024,
  maxConnections: 1000,
  idleTimeoutMs: 0,
  maxSendQueueBytes: 64 * 1024 * 1024,
};

class Rec implements TransportEvents {
  opened: number[] = [];
  frames: { conn: number; frame: Frame }[] = [];
  batches = 0;
  errors: { conn: number; error: ProtocolErrorLike }[] = [];
  closed: { conn: number; reason: string }[] = [];
  onFramesHook: ((conn: number, frames: Frame[]) => void) | null = null;
  constructor(readonly t: () => NativeTransport) {}
  onOpen(conn: number): void {
    this.opened.push(conn);
  }
  onFrames(conn: number, frames: Frame[]): void {
    this.batches++;
    for (const frame of frames) this.frames.push({ conn, frame });
    if (this.onFramesHook) this.onFramesHook(conn, frames);
    else for (const f of frames) this.t().send(conn, Flags.RESPONSE, f.command, 0, f.requestId, f.payload);
  }
  onProtocolError(conn: number, error: ProtocolErrorLike): void {
    this.errors.push({ conn, error });
    // What the gateway does: answer and close. The native layer already does both, once.
    expect(this.t().send(conn, Flags.RESPONSE | Flags.ERROR, error.command, 1, error.requestId, Buffer.from('duplicate'))).toBe(false);
    this.t().close(conn);
  }
  onClose(conn: number, reason: string): void {
    this.closed.push({ conn, reason });
  }
}

let transports: NativeTransport[] = [];
const peers: RawPeer[] = [];

async function start(options: Partial<NativeTransportOptions> = {}) {
  const t = createTransport({ ...base, ...options });
  transports.push(t);
  const rec = new Rec(() => t);
  const { port } = await t.listen(rec);
  const peer = async () => {
    const p = await RawPeer.connect(port);
    peers.push(p);
    return p;
  };
  return { t, rec, port, peer };
}

afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
  await Promise.all(transports.map((t) => t.shutdown()));
  transports = [];
});

describe('native transport', () => {
  it('answers each kind of bad frame itself with the gateway error frame, once, then closes', async () => {
    const { rec, peer } = await start({ maxFrameSize: 1024 });
    const bad: [string, Buffer][] = [];
    const magic = encodeFrame(0, 1, 0, 0);
    magic[0] = 0x12;
    bad.push(['DIOCP_ERR_PROTOCOL_BAD_MAGIC', magic]);
    const version = encodeFrame(0, 1, 0, 0);
    version[2] = 9;
    bad.push(['DIOCP_ERR_PROTOCOL_BAD_VERSION', version]);
    bad.push(['DIOCP_ERR_PROTOCOL_RESERVED_FLAG', encodeFrame(0x20, 3, 0, 77)]);
    bad.push(['DIOCP_ERR_PROTOCOL_BAD_DIRECTION', encodeFrame(Flags.PUSH, 3, 0, 78)]);
    const big = encodeFrame(0, 3, 0, 79).subarray(0, 16);
    big.writeUInt32BE(1025, 12);
    bad.push(['DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE', big]);
    for (const [code, bytes] of bad) {
      const p = await peer();
      p.write(bytes);
      await p.waitClosed(3000);
      expect(p.frames).toHaveLength(1);
      const f = p.frames[0]!;
      expect(f.flags).toBe(Flags.RESPONSE | Flags.ERROR);
      expect(f.status).toBe(1);
      const body = errorBody(f);
      expect(body.error).toBe(code);
      expect(body.code).toBe(1);
      const reported = rec.errors.at(-1)!.error;
      expect(reported.code).toBe(code);
      // The frame on the wire says exactly what JavaScript was told.
      expect(body.message).toBe(reported.message);
      // Ids echoed when the header could be trusted (magic and version right), else 0.
      expect(f.requestId).toBe(reported.requestId);
      expect(f.command).toBe(reported.command);
    }
    expect(rec.errors.map((e) => e.error.requestId)).toEqual([0, 0, 77, 78, 79]);
    expect(rec.errors.map((e) => e.error.command)).toEqual([0, 0, 3, 3, 3]);
    await eventually(() => rec.closed.length === bad.length, 2000, 'onClose for each');
    expect(rec.closed.every((c) => c.reason === 'closed')).toBe(true);
  });

  it('core hooks: onProtocolError receives a real @diocp/core ProtocolError', async () => {
    const { ProtocolError } = await import('../../core/src/errors.js');
    const t = createTransport(base, nativeHooks);
    transports.push(t as unknown as NativeTransport);
    const got: unknown[] = [];
    const { port } = await t.listen({ onOpen() {}, onFrames() {}, onClose() {}, onProtocolError: (_c, e) => got.push(e) });
    const p = await RawPeer.connect(port);
    peers.push(p);
    p.write(Buffer.from([0xff]));
    await p.waitClosed(3000);
    expect(got[0]).toBeInstanceOf(ProtocolError);
    expect((got[0] as InstanceType<typeof ProtocolError>).code).toBe('DIOCP_ERR_PROTOCOL_BAD_MAGIC');
  });

  it('hands frames of many connections to JavaScript in few calls (one per batch, not per frame)', async () => {
    const { t, rec, peer } = await start();
    const ps = await Promise.all(Array.from({ length: 40 }, () => peer()));
    await eventually(() => rec.opened.length === 40, 3000, 'opens');
    for (const p of ps) p.write(Buffer.concat(Array.from({ length: 25 }, (_, i) => encodeFrame(0, 1, 0, i + 1, Buffer.from([i])))));
    await Promise.all(ps.map((p) => p.waitFrames(25)));
    const c = t.nativeCounters();
    expect(c.frames_in).toBe(1000);
    // At most one wake-up of JavaScript per IO-thread turn, each turn carrying whole reads.
    expect(c.wakeups).toBeLessThanOrEqual(c.reads + 45);
    expect(c.wakeups).toBeLessThan(c.frames_in / 10);
    // Replies: one submit per batch, coalesced into one write per connection and batch.
    expect(c.submits).toBeLessThanOrEqual(c.wakeups + 2);
    expect(t.stats().writes).toBeLessThan(1000);
    for (const p of ps) expect(p.frames.map((f) => f.requestId)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('a receiver with onFrame/onFramesEnd gets frames one by one, each read closed by onFramesEnd, in order, and no onFrames', async () => {
    const { t, rec, peer } = await start();
    const log: (['f', number, number, number, number] | ['e', number])[] = [];
    const fast = Object.assign(rec, {
      onFrame(conn: number, flags: number, command: number, requestId: number, payload: Buffer): void {
        log.push(['f', conn, flags, requestId, payload.length === 1 ? payload[0]! : -1]);
        if ((flags & Flags.ONEWAY) === 0) t.send(conn, Flags.RESPONSE, command, 0, requestId, payload);
      },
      onFramesEnd(conn: number): void {
        log.push(['e', conn]);
      },
    });
    expect(fast.onFrame).toBeTypeOf('function');
    const ps = await Promise.all(Array.from({ length: 20 }, () => peer()));
    await eventually(() => rec.opened.length === 20, 3000, 'opens');
    for (const p of ps) {
      const frames = Array.from({ length: 25 }, (_, i) => encodeFrame(i === 24 ? Flags.ONEWAY : 0, 7, 0, i + 1, Buffer.from([i])));
      p.write(Buffer.concat(frames));
    }
    await Promise.all(ps.map((p) => p.waitFrames(24)));
    await eventually(() => log.filter((e) => e[0] === 'f').length === 500, 3000, 'all frames');
    expect(rec.batches).toBe(0);
    // Every run of frames belongs to one connection and ends with its onFramesEnd.
    let open = -1;
    for (const e of log) {
      if (e[0] === 'f') {
        if (open !== -1) expect(e[1]).toBe(open);
        open = e[1];
      } else {
        expect(e[1]).toBe(open);
        open = -1;
      }
    }
    expect(open).toBe(-1);
    const ends = log.filter((e) => e[0] === 'e').length;
    expect(ends).toBeLessThan(500 / 5);
    for (const conn of rec.opened) {
      const mine = log.filter((e): e is ['f', number, number, number, number] => e[0] === 'f' && e[1] === conn);
      expect(mine.map((e) => e[3])).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(mine.map((e) => e[4])).toEqual(Array.from({ length: 25 }, (_, i) => i));
      expect(mine.map((e) => e[2])).toEqual(Array.from({ length: 25 }, (_, i) => (i === 24 ? Flags.ONEWAY : 0)));
    }
    for (const p of ps) expect(p.frames.map((f) => f.requestId)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  });

  it('answers of one tick, many per connection, of odd sizes (unaligned headers), interleaved with other connections and ranges, arrive byte for byte and in order', async () => {
    const { t, rec, peer } = await start();
    const [a, b] = [await peer(), await peer()];
    await eventually(() => rec.opened.length === 2, 3000, 'opens');
    const [connA, connB] = rec.opened as [number, number];
    const source = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    rec.onFramesHook = (conn, frames) => {
      for (const f of frames) {
        const id = f.requestId;
        // An odd-sized answer (its successor's header starts unaligned), a range every third
        // request, and a push to the other connection every fifth, between two answers.
        if (id % 3 === 0) t.send(conn, Flags.RESPONSE, f.command, 0, id, source, id % 7, (id % 7) + (id % 11));
        else t.send(conn, Flags.RESPONSE, f.command, 0, id, Buffer.concat([f.payload, Buffer.from([id & 0xff])]));
        if (id % 5 === 0) t.send(conn === connA ? connB : connA, Flags.PUSH, 9, 0, 0, Buffer.from(`push-${id}`));
      }
    };
    const n = 60;
    const burst = (salt: number) => Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame(0, 3, 0, i + 1, Buffer.alloc(i % 7, salt + i))));
    a.write(burst(1));
    b.write(burst(101));
    const pushes = n / 5;
    await Promise.all([a.waitFrames(n + pushes), b.waitFrames(n + pushes)]);
    for (const [p, salt] of [[a, 1], [b, 101]] as const) {
      const answers = p.frames.filter((f) => (f.flags & Flags.PUSH) === 0);
      expect(answers.map((f) => f.requestId)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (const f of answers) {
        const id = f.requestId;
        const want = id % 3 === 0 ? source.subarray(id % 7, (id % 7) + (id % 11)) : Buffer.concat([Buffer.alloc((id - 1) % 7, salt + id - 1), Buffer.from([id & 0xff])]);
        expect(f.payload.equals(want)).toBe(true);
        expect(f.command).toBe(3);
      }
      expect(p.frames.filter((f) => (f.flags & Flags.PUSH) !== 0).map((f) => f.payload.toString())).toEqual(Array.from({ length: pushes }, (_, i) => `push-${(i + 1) * 5}`));
    }
  });

  it('reassembles a 3 MiB request from many reads and sends a 5 MiB response in send blocks, byte for byte', async () => {
    const { t, rec, peer } = await start();
    const request = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < request.length; i++) request[i] = (i * 7) & 0xff;
    const response = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < response.length; i++) response[i] = (i * 13) & 0xff;
    rec.onFramesHook = (conn, frames) => {
      for (const f of frames) t.send(conn, Flags.RESPONSE, f.command, 0, f.requestId, f.payload.equals(request) ? response : Buffer.from('mismatch'));
    };
    const p = await peer();
    p.request(2, 9, request);
    const [f] = await p.waitFrames(1, 10_000);
    expect(f!.payload.length).toBe(response.length);
    expect(f!.payload.equals(response)).toBe(true);
    expect(t.stats().writes).toBeGreaterThan(1);
  });

  it('payloads handed to JavaScript stay valid while later traffic flows (memory never reused)', async () => {
    const { rec, peer } = await start();
    const kept: Buffer[] = [];
    rec.onFramesHook = (_conn, frames) => {
      for (const f of frames) if (kept.length < 50) kept.push(f.payload);
    };
    const p = await peer();
    for (let i = 0; i < 50; i++) p.request(1, i + 1, Buffer.alloc(100, i));
    await eventually(() => kept.length === 50, 3000, 'first frames');
    // Several arena blocks' worth more (256 KiB each).
    for (let round = 0; round < 20; round++) {
      p.write(Buffer.concat(Array.from({ length: 64 }, (_, i) => encodeFrame(0, 1, 0, i, Buffer.alloc(1000, 0xee)))));
      await new Promise((r) => setTimeout(r, 2));
    }
    await eventually(() => rec.frames.length === 50 + 20 * 64, 5000, 'all frames');
    for (let i = 0; i < 50; i++) expect(kept[i]!.equals(Buffer.alloc(100, i))).toBe(true);
  });

  it('shows queued bytes while a peer does not read (backpressure), and closes it as slow at the bound', async () => {
    const { t, rec, peer } = await start({ maxSendQueueBytes: 4 * 1024 * 1024 });
    const p = await peer();
    p.socket.pause();
    await eventually(() => rec.opened.length === 1, 2000, 'open');
    const conn = rec.opened[0]!;
    const chunk = Buffer.alloc(256 * 1024, 1);
    let peak = 0;
    for (let i = 0; i < 64 && t.send(conn, Flags.PUSH, 9, 0, 0, chunk); i++) {
      await new Promise((r) => setTimeout(r, 5));
      peak = Math.max(peak, t.stats().sendQueueBytes);
    }
    expect(peak).toBeGreaterThan(256 * 1024);
    await eventually(() => rec.closed.length === 1, 5000, 'slow close');
    expect(rec.closed[0]!.reason).toBe('slow');
    expect(t.stats().closedSlow).toBe(1);
    await eventually(() => t.stats().sendQueueBytes === 0, 2000, 'queue released');
  });

  it('more than maxSendQueueBytes in one tick: send() refuses at once and the connection closes as slow', async () => {
    const { t, rec, peer } = await start({ maxSendQueueBytes: 1024 * 1024 });
    await peer();
    await eventually(() => rec.opened.length === 1, 2000, 'open');
    const conn = rec.opened[0]!;
    const chunk = Buffer.alloc(300 * 1024);
    const results = [0, 1, 2, 3, 4].map(() => t.send(conn, Flags.PUSH, 9, 0, 0, chunk));
    expect(results).toEqual([true, true, true, false, false]);
    await eventually(() => rec.closed.length === 1, 3000, 'slow close');
    expect(rec.closed[0]!.reason).toBe('slow');
  });

  it('flushes what was queued on graceful shutdown, then closes every connection', async () => {
    const { t, rec, peer } = await start();
    const ps = await Promise.all([peer(), peer(), peer()]);
    await eventually(() => rec.opened.length === 3, 2000, 'opens');
    for (const conn of rec.opened) for (let i = 0; i < 100; i++) t.send(conn, Flags.PUSH, 4, 0, 0, Buffer.alloc(1000, i));
    await t.shutdown();
    for (const p of ps) {
      await p.waitClosed(3000);
      expect(p.frames).toHaveLength(100);
    }
    expect(rec.closed.map((c) => c.reason)).toEqual(['closed', 'closed', 'closed']);
    expect(t.send(rec.opened[0]!, Flags.PUSH, 4, 0, 0, Buffer.alloc(1))).toBe(false);
  });

  it('stopAccepting() refuses new connections at once (before its promise settles); open ones keep working', async () => {
    const { t, rec, port, peer } = await start();
    const p = await peer();
    // Accepted by the server (a connection still in the kernel's backlog is refused with the listener).
    await eventually(() => rec.opened.length === 1, 2000, 'open');
    const stopped = t.stopAccepting();
    await expect(RawPeer.connect(port)).rejects.toThrow(/ECONNREFUSED/);
    await stopped;
    p.request(1, 5, 'still served');
    const [f] = await p.waitFrames(1);
    expect(f!.payload.toString()).toBe('still served');
  });

  it('a port in use: DIOCP_ERR_NATIVE_LISTEN with errno and syscall; with core hooks, DIOCP_ERR_TRANSPORT_LISTEN', async () => {
    const { port } = await start();
    const again = createTransport({ ...base, port });
    const err = (await again.listen(new Rec(() => again)).catch((e: unknown) => e)) as NativeTransportError;
    expect(err).toBeInstanceOf(NativeTransportError);
    expect(err.code).toBe('DIOCP_ERR_NATIVE_LISTEN');
    expect(err.syscall).toBe('bind');
    expect(err.errno).toBeLessThan(0);
    expect(err.message).toContain('EADDRINUSE');
    const viaCore = createTransport({ ...base, port }, nativeHooks);
    const coreErr = (await viaCore.listen(new Rec(() => viaCore as unknown as NativeTransport)).catch((e: unknown) => e)) as Error & { code: string; cause: { syscall: string } };
    expect(coreErr.code).toBe('DIOCP_ERR_TRANSPORT_LISTEN');
    expect(coreErr.message).toContain(`127.0.0.1:${port}: EADDRINUSE`);
    expect(coreErr.cause.syscall).toBe('bind');
  });

  it('counters are 64-bit and read without a call into native code', async () => {
    const { t, peer } = await start();
    const p = await peer();
    p.request(1, 1, 'x');
    await p.waitFrames(1);
    // The IO thread counts a write when sendmsg returns, which may be after the peer has read it.
    await eventually(() => t.stats().bytesOut === 17, 2000, 'bytesOut');
    const s = t.stats();
    expect(s.accepted).toBe(1);
    expect(s.connections).toBe(1);
    expect(s.bytesIn).toBe(17);
    expect(s.bytesOut).toBe(17);
    const c = t.nativeCounters();
    expect(c.reads).toBeGreaterThanOrEqual(1);
    expect(c.frames_in).toBe(1);
  });

  it('listens on IPv6 loopback and reports the peer address as node does', async () => {
    const t = createTransport({ ...base, host: '::1' });
    transports.push(t);
    const rec = new Rec(() => t);
    const opened: { address: string; port: number }[] = [];
    rec.onOpen = (_conn: number, remote?: { address: string; port: number }) => {
      opened.push(remote!);
    };
    let port: number;
    try {
      ({ port } = await t.listen(rec));
    } catch (err) {
      // No IPv6 on this machine: nothing to check.
      expect((err as NativeTransportError).code).toBe('DIOCP_ERR_NATIVE_LISTEN');
      return;
    }
    const net = await import('node:net');
    const s = net.connect({ host: '::1', port });
    await new Promise((r) => s.once('connect', r));
    await eventually(() => opened.length === 1, 2000, 'open');
    expect(opened[0]).toEqual({ address: '::1', port: s.localPort });
    s.destroy();
  });

  it('delivers 40,000 frames sent in one burst in order when JavaScript falls behind and the event ring fills up', async () => {
    const { t, rec, peer } = await start({ ringRecords: 8192 });
    let first = true;
    rec.onFramesHook = () => {
      if (!first) return;
      first = false;
      // A slow consumer: the IO thread fills the 8192-record ring meanwhile and must wait.
      const until = Date.now() + 200;
      while (Date.now() < until);
    };
    const p = await peer();
    const n = 40_000;
    const one = encodeFrame(0, 1, 0, 0);
    const burst = Buffer.alloc(one.length * n);
    for (let i = 0; i < n; i++) {
      one.copy(burst, i * one.length);
      burst.writeUInt32BE(i + 1, i * one.length + 8);
    }
    p.write(burst);
    await eventually(() => rec.frames.length === n, 10_000, 'all frames');
    let ordered = true;
    for (let i = 0; i < n; i++) if (rec.frames[i]!.frame.requestId !== i + 1) ordered = false;
    expect(ordered).toBe(true);
    expect(t.nativeCounters().throttled).toBeGreaterThan(0);
  });
  it('disposed from inside a batch (shutdown settling in the batch that carries a payload): that payload stays valid, its block is not freed under it', async () => {
    const { t, rec, port, peer } = await start();
    // A client on its own thread: it sends while this thread is held inside a batch.
    const worker = new Worker(
      `const net = require('node:net'); const { parentPort, workerData } = require('node:worker_threads');
       const s = net.connect(workerData.port, '127.0.0.1', () => parentPort.postMessage('ready'));
       s.on('error', () => {});
       parentPort.on('message', () => {
         const body = Buffer.alloc(1024 * 1024, 0x5a);
         const h = Buffer.from([0xd1, 0x0c, 1, 0, 0, 1, 0, 0, 0, 0, 0, 7, 0, 0x10, 0, 0]);
         s.write(Buffer.concat([h, body]));
       });`,
      { eval: true, workerData: { port } },
    );
    try {
      await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      const p = await peer();
      let held = false;
      let shut: Promise<void> | null = null;
      rec.onFramesHook = () => {
        if (held) return;
        held = true;
        // Hold this thread: the 1 MiB frame (a block of its own) is read and published, then
        // the shutdown closes both connections: frame, closes and DONE reach JavaScript in the
        // next batch, whose DONE resolves shutdown() and runs dispose() inside that batch.
        worker.postMessage('send');
        const until = Date.now() + 5000;
        while (t.nativeCounters().frames_in < 2 && Date.now() < until);
        shut = t.shutdown();
        while (t.nativeCounters().connections > 0 && Date.now() < until);
        const settle = Date.now() + 20;
        while (Date.now() < settle);
      };
      p.request(1, 1, Buffer.from('go'));
      await eventually(() => shut !== null, 5000, 'the batch that shuts down');
      await shut;
      const big = rec.frames.find((f) => f.frame.requestId === 7);
      expect(big).toBeDefined();
      // Memory churn of the same size: a block freed under the payload would be reused (or unmapped).
      const churn = Array.from({ length: 16 }, () => Buffer.alloc(1024 * 1024, 0x11));
      expect(churn.length).toBe(16);
      expect(big!.frame.payload.length).toBe(1024 * 1024);
      expect(big!.frame.payload.equals(Buffer.alloc(1024 * 1024, 0x5a))).toBe(true);
    } finally {
      await worker.terminate();
    }
  });
});
