/**
 * The dispatcher contract: every dispatch mode (inline now; local-pool and remote later)
 * must give the same answers and the same errors for the same handlers and requests.
 * Call `dispatcherConformance('mode', () => new XDispatcher(...))` from a .test.ts file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, encodeFrame, RemoteError, Status, type Client, type DiocpServer, type Dispatcher } from '../../src/index.js';
import { fixtureHandlers } from '../fixtures/handlers.js';
import { startServer } from '../fixtures/server.js';
import { RawPeer } from '../fixtures/wire.js';

export function dispatcherConformance(name: string, makeDispatcher: () => Dispatcher): void {
  describe(`dispatcher conformance: ${name}`, () => {
    let server: DiocpServer;
    let client: Client;

    beforeAll(async () => {
      server = await startServer({ handlers: fixtureHandlers, dispatcherInstance: makeDispatcher() });
      client = await connect({ port: server.port });
    });
    afterAll(async () => {
      await client?.close();
      await server?.close();
    });

    async function remoteError(p: Promise<unknown>): Promise<RemoteError> {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RemoteError);
      return err as RemoteError;
    }

    it('answers a raw command with its bytes', async () => {
      const payload = Buffer.from([0, 1, 2, 250, 255]);
      expect(await client.request(0x01, payload)).toEqual(payload);
      expect(await client.request(0x01, Buffer.alloc(0))).toEqual(Buffer.alloc(0));
    });

    it('decodes and encodes JSON and MessagePack', async () => {
      expect(await client.request(0x10, { a: 2, b: 40 }, { codec: 'json' })).toEqual({ sum: 42 });
      expect(await client.request(0x11, { list: [1, 'two', { three: 3 }] }, { codec: 'msgpack' })).toEqual({
        got: { list: [1, 'two', { three: 3 }] },
      });
    });

    it('answers BAD_REQUEST when the payload does not decode', async () => {
      const err = await remoteError(client.request(0x10, Buffer.from('{not json')));
      expect(err.status).toBe(Status.BAD_REQUEST);
      expect(err.remoteMessage).toMatch(/0x0010.*json/);
    });

    it('answers HANDLER_ERROR with the message and no stack for sync and async throws', async () => {
      const err = await remoteError(client.request(0x12));
      expect(err.status).toBe(Status.HANDLER_ERROR);
      expect(err.remoteMessage).toBe('boom: handler failed');
      expect(err.message).not.toMatch(/at .*\.ts/);
      const asyncErr = await remoteError(client.request(0x1d));
      expect(asyncErr.status).toBe(Status.HANDLER_ERROR);
      expect(asyncErr.remoteMessage).toBe('async boom');
    });

    it("answers an application error with the handler's own status and data", async () => {
      const err = await remoteError(client.request(0x13));
      expect(err.status).toBe(123);
      expect(err.remoteMessage).toBe('not allowed today');
      expect(err.data).toEqual({ retryAfter: 5 });
    });

    it('answers a framework error thrown by a handler with its status (UNAUTHORIZED)', async () => {
      const err = await remoteError(client.request(0x1c));
      expect(err.status).toBe(Status.UNAUTHORIZED);
      expect(err.remoteMessage).toBe('log in first');
    });

    it('answers TIMEOUT when a handler outlives its timeoutMs, and the connection keeps working', async () => {
      expect(await client.request(0x14, { ms: 5 }, { codec: 'json' })).toEqual({ slept: 5 });
      const err = await remoteError(client.request(0x14, { ms: 400 }, { codec: 'json' }));
      expect(err.status).toBe(Status.TIMEOUT);
      expect(err.remoteMessage).toMatch(/100 ms/);
      expect(await client.request(0x01, 'still here')).toEqual(Buffer.from('still here'));
    });

    it('answers an ordered command in arrival order and runs it one request at a time', async () => {
      const delays = [60, 5, 30, 1, 15];
      const answered: number[] = [];
      const ordered = await Promise.all(
        delays.map((delay, i) =>
          client.request<{ i: number; seen: number[] }>(0x15, { i, delay }, { codec: 'json' }).then((r) => (answered.push(r.i), r)),
        ),
      );
      expect(answered).toEqual([0, 1, 2, 3, 4]);
      // Each one saw exactly the ones before it: they did not overlap.
      expect(ordered.map((r) => r.seen)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]);
      // Unordered requests may be answered in any order (PROTOCOL.md): only the ids must match.
      const unordered = await Promise.all(delays.map((delay, i) => client.request<{ i: number }>(0x16, { i, delay }, { codec: 'json' })));
      expect(unordered.map((r) => r.i)).toEqual([0, 1, 2, 3, 4]);
    });

    it("gives a handler its connection's remote address and port, per connection", async () => {
      const a = await RawPeer.connect(server.port);
      const b = await RawPeer.connect(server.port);
      try {
        // Several requests in one write: they travel (to a thread or worker) in one batch.
        a.write(Buffer.concat([1, 2, 3].map((id) => encodeFrame(0, 0x23, 0, id, Buffer.from('{}')))));
        b.request(0x23, 9, '{}');
        const fromA = (await a.waitFrames(3)).map((f) => JSON.parse(f.payload.toString()) as { address: string; port: number; id: number });
        const [fromB] = (await b.waitFrames(1)).map((f) => JSON.parse(f.payload.toString()) as { address: string; port: number; id: number });
        for (const w of fromA) expect(w).toEqual({ address: '127.0.0.1', port: a.socket.localPort, id: fromA[0]!.id });
        expect(fromB).toEqual({ address: '127.0.0.1', port: b.socket.localPort, id: fromB!.id });
        expect(fromB!.id).not.toBe(fromA[0]!.id);
      } finally {
        a.destroy();
        b.destroy();
      }
    });

    it('keeps a session per connection', async () => {
      const other = await connect({ port: server.port });
      try {
        await client.request(0x17, { key: 'user', value: 'alice' }, { codec: 'json' });
        expect(await client.request(0x18, { key: 'user' }, { codec: 'json' })).toEqual({ value: 'alice' });
        expect(await other.request(0x18, { key: 'user' }, { codec: 'json' })).toEqual({ value: null });
      } finally {
        await other.close();
      }
    });

    it('runs ONEWAY requests without answering them', async () => {
      const c = await connect({ port: server.port });
      try {
        c.oneway(0x1b);
        c.oneway(0x1b);
        c.oneway(0x12); // a failing ONEWAY is only logged
        // Requests on one connection are read in order, so by the time this is answered both ran.
        expect(await c.request(0x18, { key: 'oneway' }, { codec: 'json' })).toEqual({ value: 2 });
        expect(c.inFlight).toBe(0);
      } finally {
        await c.close();
      }
    });

    it('delivers a push from a handler before its response', async () => {
      const pushes: [number, string][] = [];
      client.on('push', (cmd, payload) => pushes.push([cmd, payload.toString()]));
      expect((await client.request(0x19, 'x')).toString()).toBe('ok');
      expect(pushes).toEqual([[0x19, 'pushed:x']]);
      client.removeAllListeners('push');
    });

    it('constructs handlers through DI: by type and by @inject(token)', async () => {
      expect((await client.request(0x1a)).toString()).toBe('hello from DI, HitCounter injected');
    });

    it('answers UNKNOWN_COMMAND for a command without handler', async () => {
      const err = await remoteError(client.request(0x0fee));
      expect(err.status).toBe(Status.UNKNOWN_COMMAND);
      expect(err.remoteMessage).toMatch(/0x0fee/);
    });

    it('pipelines many requests on one connection and matches every reply', async () => {
      const n = 200; // under the per-connection in-flight limit (256), which every mode enforces
      const replies = await Promise.all(
        Array.from({ length: n }, (_, i) => client.request(0x01, Buffer.from(`req-${i}`))),
      );
      replies.forEach((r, i) => expect(r.toString()).toBe(`req-${i}`));
    });
  });
}
