/**
 * The transport contract. Both the node:net transport and the native one must pass it:
 * `transportConformance('net', (options) => new NetTransport(options))`.
 * A small recording harness plays the gateway's part.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  Flags,
  ProtocolError,
  type CloseReason,
  type Frame,
  type Transport,
  type TransportEvents,
  type TransportOptions,
} from '../../src/index.js';
import { eventually, RawPeer } from '../fixtures/wire.js';

class Recorder implements TransportEvents {
  opened: { conn: number; address: string; port: number }[] = [];
  batches: { conn: number; frames: Frame[] }[] = [];
  closed: { conn: number; reason: CloseReason }[] = [];
  protocolErrors: { conn: number; error: ProtocolError }[] = [];
  /** Called for every batch; by default echoes each frame back as a response. */
  onBatch: ((conn: number, frames: Frame[]) => void) | null = null;
  constructor(private readonly transport: () => Transport) {}
  onOpen(conn: number, remote: { address: string; port: number }): void {
    this.opened.push({ conn, ...remote });
  }
  onFrames(conn: number, frames: Frame[]): void {
    // Copy: the array is only valid during the call.
    this.batches.push({ conn, frames: frames.map((f) => ({ ...f, payload: Buffer.from(f.payload) })) });
    if (this.onBatch) this.onBatch(conn, frames);
    else for (const f of frames) this.transport().send(conn, Flags.RESPONSE, f.command, 0, f.requestId, f.payload);
  }
  onProtocolError(conn: number, error: ProtocolError): void {
    this.protocolErrors.push({ conn, error });
    this.transport().send(conn, Flags.RESPONSE | Flags.ERROR, error.command, 1, error.requestId, Buffer.from(error.code));
    this.transport().close(conn);
  }
  onClose(conn: number, reason: CloseReason): void {
    this.closed.push({ conn, reason });
  }
  get frameCount(): number {
    return this.batches.reduce((n, b) => n + b.frames.length, 0);
  }
}

const base: TransportOptions = {
  host: '127.0.0.1',
  port: 0,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxConnections: 1000,
  idleTimeoutMs: 0,
  maxSendQueueBytes: 2 * DEFAULT_MAX_FRAME_SIZE,
};

export function transportConformance(name: string, make: (options: TransportOptions) => Transport): void {
  describe(`transport conformance: ${name}`, () => {
    let transport: Transport | null = null;
    const peers: RawPeer[] = [];

    async function start(options: Partial<TransportOptions> = {}) {
      const t = make({ ...base, ...options });
      transport = t;
      const rec = new Recorder(() => t);
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
      await transport?.shutdown();
      transport = null;
    });

    it('accepts connections and reports the remote address', async () => {
      const { t, rec, peer } = await start();
      expect(t.name).toBeTypeOf('string');
      const p = await peer();
      await eventually(() => rec.opened.length === 1, 2000, 'onOpen');
      expect(rec.opened[0]!.address).toMatch(/127\.0\.0\.1/);
      expect(rec.opened[0]!.port).toBe(p.socket.localPort);
    });

    it('delivers all frames of one read in one batch', async () => {
      const { rec, peer } = await start();
      const p = await peer();
      const frames = Array.from({ length: 50 }, (_, i) => encodeFrame(0, 1, 0, i + 1, Buffer.from(`m${i}`)));
      p.write(Buffer.concat(frames));
      await p.waitFrames(50);
      // Loopback delivers one small write in one read: exactly one batch.
      expect(rec.batches.length).toBe(1);
      expect(rec.batches[0]!.frames.map((f) => f.requestId)).toEqual(frames.map((_, i) => i + 1));
    });

    it('reassembles frames written one byte at a time', async () => {
      const { rec, peer } = await start();
      const p = await peer();
      const bytes = Buffer.concat([encodeFrame(0, 7, 0, 1, Buffer.from('split')), encodeFrame(0, 7, 0, 2)]);
      for (const b of bytes) {
        p.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
      const got = await p.waitFrames(2);
      expect(got.map((f) => f.payload.toString())).toEqual(['split', '']);
      expect(rec.frameCount).toBe(2);
    });

    it('coalesces the frames sent in one tick into one write', async () => {
      const { t, rec, peer } = await start();
      rec.onBatch = (conn) => {
        for (let i = 0; i < 100; i++) t.send(conn, Flags.PUSH, 9, 0, 0, Buffer.from([i]));
      };
      const p = await peer();
      const before = t.stats().writes;
      p.request(1, 1);
      const got = await p.waitFrames(100);
      expect(got.map((f) => f.payload[0])).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(t.stats().writes - before).toBe(1);
    });

    it('sends a range of a payload when given start and end', async () => {
      const { t, rec, peer } = await start();
      rec.onBatch = (conn) => {
        const bytes = Buffer.from('0123456789');
        t.send(conn, Flags.PUSH, 9, 0, 0, bytes, 2, 6);
        t.send(conn, Flags.PUSH, 9, 0, 0, new Uint8Array(bytes), 7, 10);
        t.send(conn, Flags.PUSH, 9, 0, 0, bytes, 5, 5);
      };
      const p = await peer();
      p.request(1, 1);
      const got = await p.waitFrames(3);
      expect(got.map((f) => f.payload.toString())).toEqual(['2345', '789', '']);
    });

    it('flushes queued frames before close()', async () => {
      const { t, rec, peer } = await start();
      rec.onBatch = (conn) => {
        for (let i = 0; i < 3; i++) t.send(conn, Flags.PUSH, 9, 0, 0, Buffer.from('last words'));
        t.close(conn);
      };
      const p = await peer();
      p.request(1, 1);
      await p.waitClosed();
      expect(p.frames.length).toBe(3);
      await eventually(() => rec.closed.length === 1, 2000, 'onClose');
      expect(rec.closed[0]!.reason).toBe('closed');
    });

    it('reports a protocol error without delivering what follows, after the good frames before it', async () => {
      const { rec, peer } = await start();
      const p = await peer();
      const bad = encodeFrame(0, 1, 0, 2);
      bad[0] = 0xab;
      p.write(Buffer.concat([encodeFrame(0, 1, 0, 1, Buffer.from('good')), bad, encodeFrame(0, 1, 0, 3)]));
      await p.waitClosed();
      expect(rec.frameCount).toBe(1);
      expect(rec.protocolErrors.map((e) => e.error.code)).toEqual(['DIOCP_ERR_PROTOCOL_BAD_MAGIC']);
      // Response to the good frame, then the error frame, then close.
      expect(p.frames.map((f) => f.flags)).toEqual([Flags.RESPONSE, Flags.RESPONSE | Flags.ERROR]);
    });

    it('rejects an oversized length from the header alone', async () => {
      const { rec, peer } = await start({ maxFrameSize: 1024 });
      const p = await peer();
      const header = encodeFrame(0, 1, 0, 5).subarray(0, 16);
      header.writeUInt32BE(1025, 12);
      p.write(header); // no payload follows: the transport must not wait for it
      await p.waitClosed(2000);
      expect(rec.protocolErrors[0]!.error.code).toBe('DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE');
      expect(rec.protocolErrors[0]!.error.requestId).toBe(5);
    });

    it('closes a connection that does not read its responses (bounded send queue)', async () => {
      const { t, rec, peer } = await start({ maxFrameSize: 64 * 1024, maxSendQueueBytes: 256 * 1024 });
      const big = Buffer.alloc(60 * 1024, 7);
      const p = await peer();
      p.socket.pause(); // a client that never reads
      await eventually(() => rec.opened.length === 1, 2000, 'onOpen');
      const conn = rec.opened[0]!.conn;
      let sent = 0;
      // 64 MiB offered over many ticks; the queue bound must cut the connection long before.
      for (let i = 0; i < 1024 && t.send(conn, Flags.PUSH, 9, 0, 0, big); i++) {
        sent++;
        if (i % 8 === 7) await new Promise((r) => setImmediate(r));
      }
      expect(sent).toBeLessThan(1024);
      await eventually(() => rec.closed.length === 1, 5000, 'slow close');
      expect(rec.closed[0]!.reason).toBe('slow');
      expect(t.stats().closedSlow).toBe(1);
    });

    it('closes idle connections; traffic keeps a connection open', async () => {
      const { rec, peer } = await start({ idleTimeoutMs: 300 });
      const idle = await peer();
      const busy = await peer();
      const started = Date.now();
      const keepAlive = setInterval(() => busy.request(1, 1), 50);
      try {
        await idle.waitClosed(3000);
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(busy.closed).toBe(false);
        await eventually(() => rec.closed.length === 1, 2000, 'onClose');
        expect(rec.closed.map((c) => c.reason)).toEqual(['idle']);
      } finally {
        clearInterval(keepAlive);
      }
    });

    it('refuses connections over maxConnections and keeps serving the others', async () => {
      const { t, peer } = await start({ maxConnections: 2 });
      const a = await peer();
      const b = await peer();
      const c = await peer();
      await c.waitClosed(2000);
      expect(t.stats().rejected).toBe(1);
      a.request(1, 1);
      b.request(1, 1);
      await a.waitFrames(1);
      await b.waitFrames(1);
    });

    it('stops reading after pauseReading()', async () => {
      const { t, rec, peer } = await start();
      const p = await peer();
      p.request(1, 1);
      await p.waitFrames(1);
      t.pauseReading();
      p.request(1, 2);
      await new Promise((r) => setTimeout(r, 100));
      expect(rec.frameCount).toBe(1);
    });

    it('send() to an unknown connection returns false; shutdown closes everyone and frees the port', async () => {
      const { t, port, peer } = await start();
      expect(t.send(987654, Flags.PUSH, 1, 0, 0, Buffer.alloc(0))).toBe(false);
      const p = await peer();
      await t.shutdown();
      await p.waitClosed(2000);
      transport = null;
      await expect(RawPeer.connect(port)).rejects.toThrow(/ECONNREFUSED/);
    });
  });
}
