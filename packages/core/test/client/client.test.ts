import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, DiocpError, Status, RemoteError, type DiocpServer } from '../../src/index.js';
import { Echo, Slow } from '../fixtures/handlers.js';
import { startServer } from '../fixtures/server.js';
import { eventually } from '../fixtures/wire.js';

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DiocpError);
  return (err as DiocpError).code;
}

describe('client', () => {
  const servers: DiocpServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  async function boot(port = 0) {
    const s = await startServer({ handlers: [Echo, Slow], port });
    servers.push(s);
    return s;
  }

  it('fails to connect with DIOCP_ERR_CLIENT_CONNECT naming the address', async () => {
    const port = await freePort();
    const err = await connect({ port }).catch((e: DiocpError) => e);
    expect(err).toBeInstanceOf(DiocpError);
    expect((err as DiocpError).code).toBe('DIOCP_ERR_CLIENT_CONNECT');
    expect((err as DiocpError).message).toContain(`127.0.0.1:${port}`);
    expect(await codeOf(connect({ port: 70000 }))).toBe('DIOCP_ERR_CLIENT_BAD_ARGUMENT');
  });

  it('times out a request with DIOCP_ERR_CLIENT_TIMEOUT and ignores the late reply', async () => {
    const s = await boot();
    const c = await connect({ port: s.port });
    try {
      expect(await codeOf(c.request(0x14, { ms: 80 }, { codec: 'json', timeoutMs: 20 }))).toBe('DIOCP_ERR_CLIENT_TIMEOUT');
      await new Promise((r) => setTimeout(r, 100));
      expect(c.inFlight).toBe(0);
      expect((await c.request(0x01, 'ok')).toString()).toBe('ok');
    } finally {
      await c.close();
    }
  });

  it('drops a late error reply to a timed-out request without an error listener crashing the process', async () => {
    const s = await boot();
    const c = await connect({ port: s.port });
    try {
      // The server answers TIMEOUT after 100 ms, long after the client gave up at 20 ms.
      expect(await codeOf(c.request(0x14, { ms: 150 }, { codec: 'json', timeoutMs: 20 }))).toBe('DIOCP_ERR_CLIENT_TIMEOUT');
      await eventually(() => (s.stats().errors.TIMEOUT ?? 0n) === 1n, 2000, 'server TIMEOUT sent');
      await new Promise((r) => setTimeout(r, 20));
      expect((await c.request(0x01, 'alive')).toString()).toBe('alive');
    } finally {
      await c.close();
    }
  });

  it('raises server errors as RemoteError with the status', async () => {
    const s = await boot();
    const c = await connect({ port: s.port });
    try {
      const err = await c.request(0x99).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).status).toBe(Status.UNKNOWN_COMMAND);
      expect((err as RemoteError).statusName).toBe('UNKNOWN_COMMAND');
      expect((err as RemoteError).command).toBe(0x99);
    } finally {
      await c.close();
    }
  });

  it('rejects bad arguments before sending anything', async () => {
    const s = await boot();
    const c = await connect({ port: s.port });
    try {
      expect(await codeOf(c.request(0))).toBe('DIOCP_ERR_CLIENT_BAD_ARGUMENT');
      expect(await codeOf(c.request(0xff00))).toBe('DIOCP_ERR_CLIENT_BAD_ARGUMENT');
      expect(await codeOf(c.request(1, { not: 'raw' }))).toBe('DIOCP_ERR_CLIENT_BAD_ARGUMENT');
      expect(await codeOf(c.request(1, 'x', { codec: 'yaml' as never }))).toBe('DIOCP_ERR_CLIENT_BAD_ARGUMENT');
      expect(() => c.oneway(0x10000)).toThrow(/0x0001\.\.0xfeff/);
    } finally {
      await c.close();
    }
  });

  it('fails pending requests with DIOCP_ERR_CLIENT_CLOSED when the server drops the connection, and after close()', async () => {
    // A peer that reads a request and hangs up without answering.
    const rude = net.createServer((sock) => sock.once('data', () => sock.destroy()));
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    try {
      const c = await connect({ port: (rude.address() as net.AddressInfo).port });
      const disconnects: boolean[] = [];
      c.on('disconnect', (_e, willReconnect) => disconnects.push(willReconnect));
      expect(await codeOf(c.request(0x01, 'anyone?'))).toBe('DIOCP_ERR_CLIENT_CLOSED');
      expect(disconnects).toEqual([false]);
      expect(await codeOf(c.request(0x01, 'x'))).toBe('DIOCP_ERR_CLIENT_CLOSED');
      await c.close();
    } finally {
      rude.close();
    }
  });

  it('reconnects with backoff, queueing requests made while disconnected', async () => {
    const port = await freePort();
    const first = await boot(port);
    const c = await connect({ port, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const events: string[] = [];
    c.on('disconnect', (_e, again) => events.push(`disconnect:${again}`));
    c.on('reconnect', () => events.push('reconnect'));
    try {
      expect((await c.request(0x01, 'before')).toString()).toBe('before');
      await first.close();
      servers.splice(servers.indexOf(first), 1);
      await eventually(() => events.includes('disconnect:true'), 2000, 'disconnect');
      const queued = c.request(0x01, 'queued while down', { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 150)); // a few failed attempts
      await boot(port);
      expect((await queued).toString()).toBe('queued while down');
      expect(events.at(-1)).toBe('reconnect');
      expect((await c.request(0x01, 'after')).toString()).toBe('after');
    } finally {
      await c.close();
    }
  });

  it('bounds the requests waiting for a reconnect', async () => {
    const port = await freePort();
    const s = await boot(port);
    const c = await connect({ port, reconnect: { initialDelayMs: 1000 }, maxQueued: 2 });
    try {
      // The 'disconnect' event, not `connected`: the socket is destroyed (connected false) a
      // moment before the client has processed its close and starts queueing for the reconnect.
      const disconnected = new Promise((resolve) => c.once('disconnect', resolve));
      await s.close();
      servers.length = 0;
      await disconnected;
      const a = c.request(0x01, 'a', { timeoutMs: 100 });
      const b = c.request(0x01, 'b', { timeoutMs: 100 });
      expect(await codeOf(c.request(0x01, 'c'))).toBe('DIOCP_ERR_CLIENT_QUEUE_FULL');
      expect(await codeOf(a)).toBe('DIOCP_ERR_CLIENT_TIMEOUT');
      expect(await codeOf(b)).toBe('DIOCP_ERR_CLIENT_TIMEOUT');
    } finally {
      await c.close();
    }
  });
});
