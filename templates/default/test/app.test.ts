// The example app, started the way users start it (its diocp.config.mjs, compiled handlers)
// and driven over TCP with the client library.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connect, createServer, handlerFiles, loadConfigFile, loadHandlers, RemoteError, type Client, type DiocpServer } from '@diocp/core';

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const diocpBin = path.join(path.dirname(createRequire(import.meta.url).resolve('@diocp/core/package.json')), 'bin/diocp.js');

// The app's config says local-pool; the same handler classes must also work inline, and in
// remote mode with a `diocp worker` started in this folder, as the README says.
for (const dispatch of ['local-pool', 'inline', 'remote'] as const)
describe(`example app (${dispatch} dispatch)`, () => {
  let server: DiocpServer;
  let worker: ChildProcess | null = null;
  const clients: Client[] = [];
  const client = async () => {
    const c = await connect({ port: server.port });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    const { config } = await loadConfigFile(appDir);
    const entries = (config as { handlers: string[] }).handlers;
    const handlers = await loadHandlers(entries, appDir);
    server = createServer({
      handlers,
      handlerModules: handlerFiles(entries, appDir),
      dispatch: dispatch === 'remote' ? { mode: 'remote', bind: 'tcp://127.0.0.1:*' } : dispatch,
      threads: 2,
      host: '127.0.0.1',
      port: 0,
      transport: 'net',
      logger: pino({ level: 'silent' }),
    });
    const { remote } = await server.listen();
    if (remote !== undefined) {
      const env = { ...process.env };
      delete env.NODE_OPTIONS;
      worker = spawn(process.execPath, [diocpBin, 'worker', '--connect', remote, '--log-level', 'warn'], { cwd: appDir, env, stdio: 'inherit' });
      for (let i = 0; i < 1000 && server.stats().dispatch!.workers.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(server.stats().dispatch!.workers).toHaveLength(1);
    }
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
  });

  it('0x01 echoes raw bytes unchanged', async () => {
    const c = await client();
    const bytes = Buffer.from(Array.from({ length: 64 }, (_, i) => i * 3));
    expect(await c.request(0x01, bytes)).toEqual(bytes);
  });

  it('0x02 sums numbers (JSON) and answers application error 100 for bad input', async () => {
    const c = await client();
    expect(await c.request(0x02, { numbers: [1, 2, 3.5] }, { codec: 'json' })).toEqual({ sum: 6.5 });
    const err = await c.request(0x02, { numbers: 'no' }, { codec: 'json' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).status).toBe(100);
  });

  it('0x05 burns about the CPU time asked for, and refuses bad input with 102', async () => {
    const c = await client();
    const t0 = performance.now();
    const r = await c.request<{ spun: number }>(0x05, { ms: 20 }, { codec: 'json' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    expect(r.spun).toBeGreaterThan(0);
    const err = await c.request(0x05, { ms: 1000 }, { codec: 'json' }).catch((e: RemoteError) => e);
    expect((err as RemoteError).status).toBe(102);
  });

  it('0x04 logs in (injected UserDirectory) and 0x03 chat broadcasts to every other connection as that user', async () => {
    const alice = await client();
    const bob = await client();
    const carol = await client();
    const bad = await alice.request(0x04, { user: 'alice', password: 'nope' }, { codec: 'json' }).catch((e: RemoteError) => e);
    expect((bad as RemoteError).status).toBe(101);
    expect(await alice.request(0x04, { user: 'alice', password: 'wonderland' }, { codec: 'json' })).toEqual({ user: 'alice' });
    const heard: string[] = [];
    const own: string[] = [];
    alice.on('push', () => own.push('alice heard herself'));
    for (const [name, c] of [['bob', bob], ['carol', carol]] as const) {
      c.on('push', (cmd, payload) => heard.push(`${name}:${cmd}:${payload.toString()}`));
    }
    const reply = await alice.request<{ delivered: number }>(0x03, { text: 'hi all' }, { codec: 'json' });
    expect(reply.delivered === -1 || reply.delivered >= 2).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(heard.sort()).toEqual(['bob:3:{"from":"alice","text":"hi all"}', 'carol:3:{"from":"alice","text":"hi all"}']);
    expect(own).toEqual([]);
  });
});
