// Remote dispatch error paths: bad addresses, a rogue DEALER speaking junk, another protocol
// version, a gateway that refuses the worker, bad worker flags.
import { pack, unpack } from 'msgpackr';
import { Dealer, Router } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer } from '../../src/index.js';
import { runCli } from '../cli/helpers.js';
import { silent, startServer } from '../fixtures/server.js';
import { capturingLogger, dispatchStats, failureSuite, spawnWorkers, until, workersReady, WorkerProcess } from './helpers.js';

const header = (type: number, version = 1) => Buffer.from([0x44, 0x57, version, type]);

/** Receive one message on `s` within `ms`, or null. */
async function receiveWithin(s: Dealer | Router, ms: number): Promise<Buffer[] | null> {
  s.receiveTimeout = ms;
  try {
    return (await s.receive()) as Buffer[];
  } catch {
    return null;
  }
}

describe('remote dispatch error paths', () => {
  const suite = failureSuite();
  const { servers, clients, procs } = suite;
  const sockets: (Dealer | Router)[] = [];
  // Registered after the suite's: runs before it (hooks run as a stack), as the sockets close first.
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });

  it('a bind address that is taken or not local: listen() fails with DIOCP_ERR_REMOTE_BIND', async () => {
    const first = await startServer({ handlers: suite.classes, dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*' } });
    servers.push(first);
    const taken = createServer({ handlers: suite.classes, port: 0, transport: 'net', logger: silent, dispatch: { mode: 'remote', bind: dispatchStats(first).endpoint } });
    await expect(taken.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_REMOTE_BIND', message: expect.stringMatching(/already in use/i) });
    const foreign = createServer({ handlers: suite.classes, port: 0, transport: 'net', logger: silent, dispatch: { mode: 'remote', bind: 'tcp://192.0.2.1:7002' } });
    await expect(foreign.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_REMOTE_BIND', message: expect.stringContaining('tcp://192.0.2.1:7002') });
    // Nothing was left listening: the TCP port of the failed server was never opened.
    expect(() => taken.stats()).toThrow(/not listening/);
  });

  it('a rogue DEALER sending junk is logged with a code and counted; the gateway keeps serving', async () => {
    const { logger, lines } = capturingLogger('info');
    const server = await startServer({ handlers: suite.classes, logger, dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*', heartbeatMs: 100 } });
    servers.push(server);
    const endpoint = dispatchStats(server).endpoint;
    procs.push(...spawnWorkers(1, endpoint, suite.config, suite.dir));
    await workersReady(server, 1);

    const rogue = new Dealer();
    sockets.push(rogue);
    rogue.connect(endpoint);
    await rogue.send(['hello']);
    await rogue.send([header(0x05), Buffer.alloc(5), Buffer.alloc(0), Buffer.alloc(0)]); // RESULT index not a multiple of 12
    await rogue.send([header(0x01), Buffer.from([0x82, 0xa1])]); // READY whose body is cut short
    await rogue.send([header(0x01), pack({ capacity: 0 })]); // READY without credit
    await rogue.send([header(0x42)]); // unknown type
    await until(() => dispatchStats(server).badMessages === 5, 'five bad messages counted');
    const logged = lines.filter((l) => l.code === 'DIOCP_ERR_REMOTE_BAD_MESSAGE');
    // Logged once per peer, not once per message: a flood cannot flood the log.
    expect(logged).toHaveLength(1);
    expect(logged[0]!.msg).toMatch(/not a diocp worker-protocol message/);
    expect(dispatchStats(server).workers).toHaveLength(1);

    // A peer that registers and then answers with garbage loses its registration and is told.
    await rogue.send([header(0x01), pack({ capacity: 4, pid: 1, name: 'rogue' })]);
    const welcome = await receiveWithin(rogue, 2000);
    expect(welcome?.[0]).toEqual(header(0x02));
    expect(unpack(welcome![1]!)).toEqual({ heartbeatMs: 100, liveness: 3 });
    await rogue.send([header(0x05), Buffer.alloc(12), Buffer.alloc(3), Buffer.alloc(0)]); // says 0 bytes, sends 3
    let refuse: Buffer[] | null;
    do refuse = await receiveWithin(rogue, 2000);
    while (refuse !== null && refuse[0]![3] !== 0x08); // skip heartbeats
    expect(unpack(refuse![1]!)).toMatchObject({ code: 'DIOCP_ERR_REMOTE_BAD_MESSAGE' });
    expect(dispatchStats(server).workersLost).toBe(1);

    const c = await connect({ port: server.port });
    clients.push(c);
    expect((await Promise.all(Array.from({ length: 50 }, (_, i) => c.request(0x01, `ok${i}`)))).map(String)).toEqual(Array.from({ length: 50 }, (_, i) => `ok${i}`));
  });

  it('a peer speaking another protocol version gets REFUSE with DIOCP_ERR_REMOTE_VERSION and is never given work', async () => {
    const { logger, lines } = capturingLogger('info');
    const server = await startServer({ handlers: suite.classes, logger, dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*' } });
    servers.push(server);
    const old = new Dealer();
    sockets.push(old);
    old.connect(dispatchStats(server).endpoint);
    await old.send([header(0x01, 9), pack({ capacity: 10, pid: 2, name: 'future' })]);
    const reply = await receiveWithin(old, 2000);
    expect(reply?.[0]).toEqual(header(0x08));
    expect(unpack(reply![1]!)).toMatchObject({ code: 'DIOCP_ERR_REMOTE_VERSION', message: expect.stringMatching(/version 9.*version 1/) });
    expect(dispatchStats(server).workers).toHaveLength(0);
    expect(dispatchStats(server).refusedVersion).toBe(1);
    expect(lines.some((l) => l.code === 'DIOCP_ERR_REMOTE_VERSION')).toBe(true);
  });

  it('diocp worker exits 1 with DIOCP_ERR_REMOTE_REFUSED when the gateway refuses it', async () => {
    const fake = new Router();
    sockets.push(fake);
    await fake.bind('tcp://127.0.0.1:*');
    const [w] = spawnWorkers(1, fake.lastEndpoint!, suite.config, suite.dir);
    procs.push(w!);
    const ready = await receiveWithin(fake, 10_000);
    expect(ready?.[1]).toEqual(header(0x01));
    expect(unpack(ready![2]!)).toMatchObject({ capacity: 1024, pid: w!.pid, name: 'w0', threads: 0 });
    await fake.send([ready![0]!, header(0x08), pack({ code: 'DIOCP_ERR_REMOTE_VERSION', message: 'worker protocol version 1 is not supported' })]);
    const exit = await w!.exited;
    expect(exit.code).toBe(1);
    expect(w!.lines.some((l) => l.code === 'DIOCP_ERR_REMOTE_REFUSED' && /not supported/.test(l.msg))).toBe(true);
  });

  it('diocp worker with no gateway keeps retrying with backoff, and SIGTERM still ends it with 0', async () => {
    const w = new WorkerProcess(['--connect', 'tcp://127.0.0.1:1', '--config', suite.config], suite.dir);
    procs.push(w);
    await until(() => w.lines.filter((l) => /no answer from the gateway yet/.test(l.msg)).length >= 1, 'a retry', 10_000);
    expect(await w.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('bad worker and start flags are refused with a coded error', async () => {
    const bad = await runCli(['worker', '--connect', 'localhost:7002', '--config', suite.config], { cwd: suite.dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"worker".*\.connect must be a ZeroMQ address.*DIOCP_ERR_CONFIG_INVALID/);
    const zero = await runCli(['worker', '--concurrency', '0', '--config', suite.config], { cwd: suite.dir });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--concurrency must be a whole number in 1\.\..*DIOCP_ERR_CLI_USAGE/);
    const halfCurve = await runCli(['worker', '--server-key', 'x', '--config', suite.config], { cwd: suite.dir });
    expect(halfCurve.code).toBe(2);
    expect(halfCurve.stderr).toMatch(/CURVE needs --server-key, --public-key and --secret-key/);
    const bindInline = await runCli(['start', '--bind', 'tcp://127.0.0.1:7002', '--config', suite.config], { cwd: suite.dir });
    expect(bindInline.code).toBe(2);
    expect(bindInline.stderr).toMatch(/--bind needs --dispatch remote.*DIOCP_ERR_CLI_USAGE/);
    const help = await runCli(['worker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--connect <address>/);
  });
});
