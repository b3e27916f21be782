// End-to-end behaviour of the gateway over real TCP on 127.0.0.1 (PROTOCOL.md).
import { afterEach, describe, expect, it } from 'vitest';
import { connect, encodeFrame, Flags, PING_COMMAND, RemoteError, Status, type DiocpServer, type ServerOptions } from '../../src/index.js';
import { fixtureHandlers, Slow } from '../fixtures/handlers.js';
import { startServer } from '../fixtures/server.js';
import { errorBody, eventually, RawPeer } from '../fixtures/wire.js';

describe('gateway over TCP', () => {
  let server: DiocpServer | null = null;
  const peers: RawPeer[] = [];

  async function boot(options: Partial<ServerOptions> = {}) {
    server = await startServer({ handlers: fixtureHandlers, ...options });
    return server;
  }
  async function peer(): Promise<RawPeer> {
    const p = await RawPeer.connect(server!.port);
    peers.push(p);
    return p;
  }

  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    await server?.close();
    server = null;
  });

  it('echoes, with the exact response header of PROTOCOL.md', async () => {
    await boot();
    const p = await peer();
    p.request(0x01, 77, 'hello');
    const [f] = await p.waitFrames(1);
    expect(f).toMatchObject({ flags: Flags.RESPONSE, command: 0x01, status: 0, requestId: 77 });
    expect(f!.payload.toString()).toBe('hello');
  });

  it('reassembles requests written one byte at a time, and answers many frames from one write', async () => {
    await boot();
    const p = await peer();
    const one = encodeFrame(0, 0x01, 0, 1, Buffer.from('slow bytes'));
    for (const b of one) {
      p.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    expect((await p.waitFrames(1))[0]!.payload.toString()).toBe('slow bytes');
    const many = Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeFrame(0, 0x01, 0, 100 + i, Buffer.from(`#${i}`))));
    p.write(many);
    const got = await p.waitFrames(201);
    expect(got.slice(1).map((f) => f.requestId)).toEqual(Array.from({ length: 200 }, (_, i) => 100 + i));
    expect(got.slice(1).map((f) => f.payload.toString())).toEqual(Array.from({ length: 200 }, (_, i) => `#${i}`));
  });

  it('rejects an oversized length with PROTOCOL_ERROR at once, without waiting for the payload, then closes', async () => {
    await boot({ maxFrameSize: 1024, maxSendQueueBytes: 4096 });
    const p = await peer();
    const header = Buffer.alloc(16);
    header.set([0xd1, 0x0c, 1, 0, 0, 1, 0, 0, 0, 0, 0, 9]);
    header.writeUInt32BE(0xffff_ffff, 12); // 4 GiB announced, never sent
    p.write(header);
    await p.waitClosed(2000);
    expect(p.frames).toHaveLength(1);
    const f = p.frames[0]!;
    expect(f).toMatchObject({ flags: Flags.RESPONSE | Flags.ERROR, status: Status.PROTOCOL_ERROR, command: 1, requestId: 9 });
    expect(errorBody(f)).toMatchObject({ code: 1, error: 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE' });
    expect(errorBody(f).message).toMatch(/4294967295.*1024/);
    expect(server!.stats().errors.PROTOCOL_ERROR).toBe(1n);
  });

  const badFrames: [string, (b: Buffer) => void, string, number][] = [
    ['bad magic', (b) => (b[0] = 0xca), 'DIOCP_ERR_PROTOCOL_BAD_MAGIC', 0],
    ['bad version', (b) => (b[2] = 2), 'DIOCP_ERR_PROTOCOL_BAD_VERSION', 0],
    ['a reserved flag', (b) => (b[3] = 0x20), 'DIOCP_ERR_PROTOCOL_RESERVED_FLAG', 5],
    ['a RESPONSE flag from a client', (b) => (b[3] = Flags.RESPONSE), 'DIOCP_ERR_PROTOCOL_BAD_DIRECTION', 5],
  ];
  for (const [what, spoil, code, echoedId] of badFrames) {
    it(`answers ${what} with PROTOCOL_ERROR then closes, other connections unaffected`, async () => {
      await boot();
      const bystander = await peer();
      const p = await peer();
      const frame = encodeFrame(0, 0x01, 0, 5, Buffer.from('x'));
      spoil(frame);
      p.write(frame);
      await p.waitClosed(2000);
      expect(p.frames).toHaveLength(1);
      expect(p.frames[0]).toMatchObject({ flags: 0x03, status: 1, requestId: echoedId });
      expect(errorBody(p.frames[0]!)).toMatchObject({ code: 1, error: code });
      bystander.request(0x01, 1, 'unaffected');
      const [answer] = await bystander.waitFrames(1);
      expect(answer!.payload.toString()).toBe('unaffected');
      // The error frame counts as sent whichever layer wrote it (native-iocp writes it itself).
      const st = server!.stats();
      expect(st.framesOut).toBe(2n);
      expect(st.bytesOut).toBe(BigInt(16 + p.frames[0]!.payload.length + 16 + answer!.payload.length));
      expect(st.errors.PROTOCOL_ERROR).toBe(1n);
    });
  }

  it('answers UNKNOWN_COMMAND and keeps the connection', async () => {
    await boot();
    const p = await peer();
    p.request(0x0bad, 3);
    p.request(0x01, 4, 'after');
    const [err, ok] = await p.waitFrames(2);
    expect(err).toMatchObject({ flags: 0x03, command: 0x0bad, status: Status.UNKNOWN_COMMAND, requestId: 3 });
    expect(errorBody(err!)).toEqual({ code: 2, message: 'no handler is registered for command 0x0bad', error: 'DIOCP_ERR_ROUTER_UNKNOWN_COMMAND' });
    expect(ok!.payload.toString()).toBe('after');
  });

  it('answers a handler throw with HANDLER_ERROR, stack only in debug mode', async () => {
    await boot();
    let p = await peer();
    p.request(0x12, 1);
    let [f] = await p.waitFrames(1);
    expect(f!.status).toBe(Status.HANDLER_ERROR);
    expect(errorBody(f!)).toEqual({ code: 3, message: 'boom: handler failed', error: 'DIOCP_ERR_HANDLER_FAILED' });
    await server!.close();
    await boot({ debug: true });
    p = await peer();
    p.request(0x12, 1);
    [f] = await p.waitFrames(1);
    expect(errorBody(f!).stack).toMatch(/boom: handler failed\n\s+at /);
  });

  it('answers TIMEOUT when the handler overruns, and drops its late result', async () => {
    await boot();
    const p = await peer();
    p.request(0x14, 1, JSON.stringify({ ms: 300 }));
    const [f] = await p.waitFrames(1, 2000);
    expect(f).toMatchObject({ status: Status.TIMEOUT, requestId: 1 });
    expect(errorBody(f!).error).toBe('DIOCP_ERR_HANDLER_TIMEOUT');
    await new Promise((r) => setTimeout(r, 350));
    expect(p.frames).toHaveLength(1);
    expect(server!.stats().inFlight).toBe(0);
  });

  it('answers an ordered command in arrival order', async () => {
    await boot();
    const p = await peer();
    const delays = [50, 1, 20, 5];
    p.write(Buffer.concat(delays.map((delay, i) => encodeFrame(0, 0x15, 0, i + 1, Buffer.from(JSON.stringify({ i, delay }))))));
    const got = await p.waitFrames(4);
    expect(got.map((f) => f.requestId)).toEqual([1, 2, 3, 4]);
    expect(got.map((f) => JSON.parse(f.payload.toString()).seen)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
  });

  it('answers PING itself, echoing the payload, and a ONEWAY PING not at all', async () => {
    await boot();
    const p = await peer();
    p.request(PING_COMMAND, 0, 'x', Flags.ONEWAY);
    p.request(PING_COMMAND, 42, 'are you there');
    const [f] = await p.waitFrames(1);
    expect(f).toMatchObject({ flags: Flags.RESPONSE, command: 0xffff, status: 0, requestId: 42 });
    expect(f!.payload.toString()).toBe('are you there');
    await new Promise((r) => setTimeout(r, 50));
    expect(p.frames).toHaveLength(1);
  });

  it('closes an idle connection; PING keeps another one open', async () => {
    await boot({ idleTimeoutMs: 300 });
    const idle = await peer();
    const pinger = await peer();
    const timer = setInterval(() => pinger.request(PING_COMMAND, 1), 60);
    try {
      await idle.waitClosed(3000);
      expect(pinger.closed).toBe(false);
      expect(server!.stats().closedIdle).toBe(1);
    } finally {
      clearInterval(timer);
    }
  });

  it('answers OVERLOADED past the per-connection in-flight limit, and recovers', async () => {
    await boot({ maxInFlightPerConnection: 3 });
    const p = await peer();
    const slow = (id: number) => encodeFrame(0, 0x14, 0, id, Buffer.from(JSON.stringify({ ms: 50 })));
    p.write(Buffer.concat([1, 2, 3, 4, 5].map(slow)));
    const got = await p.waitFrames(5);
    const overloaded = got.filter((f) => f.status === Status.OVERLOADED);
    expect(overloaded.map((f) => f.requestId)).toEqual([4, 5]);
    expect(errorBody(overloaded[0]!).message).toMatch(/limit 3/);
    expect(got.filter((f) => f.status === 0).map((f) => f.requestId).sort()).toEqual([1, 2, 3]);
    p.write(slow(6));
    expect((await p.waitFrames(6))[5]).toMatchObject({ requestId: 6, status: 0 });
  });

  it('answers OVERLOADED past the server-wide in-flight limit', async () => {
    await boot({ maxInFlight: 2 });
    const a = await peer();
    const b = await peer();
    const slow = (id: number) => encodeFrame(0, 0x14, 0, id, Buffer.from(JSON.stringify({ ms: 50 })));
    a.write(Buffer.concat([slow(1), slow(2)]));
    await eventually(() => server!.stats().inFlight === 2, 2000, 'two in flight');
    b.write(slow(3));
    const [f] = await b.waitFrames(1);
    expect(f).toMatchObject({ status: Status.OVERLOADED, requestId: 3 });
    expect(errorBody(f!).message).toMatch(/on this server \(limit 2\)/);
    expect((await a.waitFrames(2)).every((x) => x.status === 0)).toBe(true);
  });

  it('answers HANDLER_ERROR instead of a response over maxFrameSize, and keeps the connection', async () => {
    await boot({ maxFrameSize: 1000 });
    const p = await peer();
    const big = Buffer.alloc(1000, 1);
    p.request(0x01, 1, big); // exactly the limit: fine
    p.request(0x19, 2, big); // "pushed:" + 1000 bytes is over it, and so is nothing else
    const got = await p.waitFrames(2);
    expect(got[0]).toMatchObject({ requestId: 1, status: 0 });
    expect(got[0]!.payload.length).toBe(1000);
    expect(got[1]).toMatchObject({ requestId: 2, status: Status.HANDLER_ERROR });
    expect(errorBody(got[1]!)).toMatchObject({ error: 'DIOCP_ERR_GATEWAY_BAD_PUSH' });
    expect(errorBody(got[1]!).message).toMatch(/1007 bytes is over maxFrameSize 1000/);
    p.request(0x1e, 3, JSON.stringify({ text: 'abc', times: 400 }));
    const [, , tooBig] = await p.waitFrames(3);
    expect(tooBig).toMatchObject({ requestId: 3, status: Status.HANDLER_ERROR });
    expect(errorBody(tooBig!)).toMatchObject({ error: 'DIOCP_ERR_GATEWAY_RESPONSE_TOO_LARGE' });
    expect(p.closed).toBe(false);
  });

  it('refuses a push with a bad command with DIOCP_ERR_GATEWAY_BAD_PUSH', async () => {
    const s = await boot();
    expect(() => s.gateway.push(1, 0x10000, 'x')).toThrow(expect.objectContaining({ code: 'DIOCP_ERR_GATEWAY_BAD_PUSH' }));
    expect(() => s.gateway.broadcast(0, 'x')).toThrow(/cannot push: the command must be an integer/);
    expect(s.gateway.push(123456, 1, 'nobody')).toBe(false);
  });

  it('pushes to one connection and broadcasts to the others', async () => {
    const s = await boot();
    const a = await connect({ port: s.port });
    const b = await connect({ port: s.port });
    try {
      const got: string[] = [];
      a.on('push', (cmd, p) => got.push(`a:${cmd}:${p}`));
      b.on('push', (cmd, p) => got.push(`b:${cmd}:${p}`));
      await a.ping();
      await b.ping();
      expect(s.gateway.broadcast(0x30, 'to all')).toBe(2);
      expect(s.gateway.broadcast(0x30, { json: true })).toBe(2);
      await eventually(() => got.length === 4, 2000, 'pushes');
      expect(got.sort()).toEqual(['a:48:to all', 'a:48:{"json":true}', 'b:48:to all', 'b:48:{"json":true}']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('shows the bytes waiting for a peer that does not read (stats().sendQueueBytes), then closes it as slow', async () => {
    const s = await boot({ maxFrameSize: 512 * 1024, maxSendQueueBytes: 2 * 1024 * 1024 });
    const p = await peer();
    p.socket.pause(); // never reads: the kernel buffers fill, then the transport's queue
    await eventually(() => s.stats().connections.now === 1, 2000, 'open');
    const big = 'x'.repeat(256 * 1024);
    let peak = 0;
    for (let i = 0; i < 80 && s.stats().closedSlow === 0; i++) {
      s.gateway.broadcast(0x30, big);
      await new Promise((r) => setTimeout(r, 5));
      peak = Math.max(peak, s.stats().sendQueueBytes);
    }
    expect(peak).toBeGreaterThan(0);
    await eventually(() => s.stats().closedSlow === 1, 5000, 'slow close');
    await eventually(() => s.stats().sendQueueBytes === 0, 2000, 'queue released');
  });

  it('never delivers a late reply to a later connection (id generations)', async () => {
    await boot();
    const p = await peer();
    p.request(0x14, 1, JSON.stringify({ ms: 60 }));
    await eventually(() => server!.stats().inFlight === 1, 2000, 'request in flight');
    p.destroy();
    await eventually(() => server!.stats().connections.now === 0, 2000, 'close');
    // The next connection reuses the slot; it must get nothing it did not ask for.
    const next = await peer();
    await eventually(() => server!.stats().lateReplies === 1n, 2000, 'late reply dropped');
    next.request(0x01, 2, 'mine');
    const frames = await next.waitFrames(1);
    expect(frames.map((f) => f.requestId)).toEqual([2]);
    expect(server!.stats().connections.accepted).toBe(2n);
  });

  it('shuts down gracefully: stops accepting, answers every request already read, then closes', async () => {
    const s = await boot();
    const p = await peer();
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    p.write(Buffer.concat(ids.map((id) => encodeFrame(0, 0x14, 0, id, Buffer.from(JSON.stringify({ ms: 40 + id }))))));
    await eventually(() => s.stats().inFlight === 20, 2000, 'requests read');
    const closing = s.close();
    await expect(RawPeer.connect(s.port)).rejects.toThrow(/ECONNREFUSED/);
    await closing;
    await p.waitClosed(2000);
    expect(p.frames.map((f) => f.requestId).sort((a, b) => a - b)).toEqual(ids);
    expect(p.frames.every((f) => f.status === 0)).toBe(true);
    server = null;
  });

  it('answers UNAVAILABLE for what is still running when the shutdown timeout passes', async () => {
    const s = await boot({ shutdownTimeoutMs: 50, handlers: [Slow] });
    const p = await peer();
    p.request(0x14, 1, JSON.stringify({ ms: 90 })); // under its 100 ms timeout, over the shutdown's 50 ms
    await eventually(() => s.stats().inFlight === 1, 2000, 'request read');
    await s.close();
    await p.waitClosed(2000);
    expect(p.frames).toHaveLength(1);
    expect(p.frames[0]).toMatchObject({ status: Status.UNAVAILABLE, requestId: 1 });
    expect(errorBody(p.frames[0]!).error).toBe('DIOCP_ERR_GATEWAY_SHUTTING_DOWN');
    server = null;
  });

  it('serves 1,000 concurrent connections, each doing requests', async () => {
    const s = await boot();
    const clients = await Promise.all(Array.from({ length: 1000 }, () => connect({ port: s.port })));
    try {
      await eventually(() => s.stats().connections.now === 1000, 5000, '1000 connections accepted');
      await Promise.all(
        clients.map(async (c, i) => {
          for (let k = 0; k < 5; k++) {
            const payload = Buffer.from(`${i}/${k}`);
            expect(await c.request(0x01, payload)).toEqual(payload);
          }
          expect(await c.request(0x10, { a: i, b: 1 }, { codec: 'json' })).toEqual({ sum: i + 1 });
        }),
      );
      const st = s.stats();
      expect(st.connections.max).toBe(1000);
      expect(st.framesIn).toBe(6000n);
      expect(st.framesOut).toBe(6000n);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('counts an answer sent outside any read (an async handler) in the next stats(), with no further traffic', async () => {
    const s = await boot();
    const p = await peer();
    p.request(0x14, 1, JSON.stringify({ ms: 20 }));
    const [f] = await p.waitFrames(1);
    const st = s.stats();
    expect(st.framesIn).toBe(1n);
    expect(st.framesOut).toBe(1n);
    expect(st.bytesOut).toBe(BigInt(16 + f!.payload.length));
  });

  it('counts frames, bytes and errors as 64-bit values', async () => {
    const s = await boot();
    const c = await connect({ port: s.port });
    try {
      await c.request(0x01, Buffer.alloc(10));
      await c.request(0x12).catch((e: unknown) => expect(e).toBeInstanceOf(RemoteError));
      const st = s.stats();
      expect(st.framesIn).toBe(2n);
      expect(st.bytesIn).toBe(16n + 10n + 16n);
      expect(st.errors).toEqual({ HANDLER_ERROR: 1n });
      expect(typeof st.bytesOut).toBe('bigint');
    } finally {
      await c.close();
    }
  });
});
