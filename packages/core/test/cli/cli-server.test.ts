import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { useTempDirs, handlersModule, runCli, ServerProcess } from './helpers.js';
import { testTransport } from '../fixtures/server.js';

const tempDir = useTempDirs('diocp-cli-srv-');

const servers: ServerProcess[] = [];
function startServer(args: string[], cwd: string, env?: NodeJS.ProcessEnv): ServerProcess {
  const s = new ServerProcess(args, cwd, env);
  servers.push(s);
  return s;
}

/** A project folder: diocp.config.mjs pointing `handlers` at a module folder. */
async function project(): Promise<string> {
  return tempDir({
    'handlers/all.mjs': handlersModule(),
    'diocp.config.mjs': 'export default { handlers: ["./handlers"] };\n',
  });
}


afterEach(async () => {
  // Never leave a server behind, whatever the test did.
  await Promise.all(servers.splice(0).map((s) => s.kill()));
});


describe('diocp start + diocp call', () => {
  it('starts on a free port, answers calls, reports unknown commands, and stops cleanly on SIGTERM', async () => {
    const dir = await project();
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', testTransport], dir);
    const line = await server.listening();
    expect(line.transport).toBe(testTransport);
    expect(line.dispatch).toBe('inline');
    expect(line.host).toBe('127.0.0.1');
    expect(typeof line.port).toBe('number');
    const port = line.port as number;
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
    expect(line.msg).toContain(`127.0.0.1:${port}`);
    expect(line.commands).toBe(3);
    expect(line.config).toBe(path.join(dir, 'diocp.config.mjs'));

    const echo = await runCli(['call', '--port', String(port), '0x01', 'hello']);
    expect(echo.stderr).toBe('');
    expect(echo.code).toBe(0);
    expect(echo.stdout).toBe('hello\n');

    const unknown = await runCli(['call', '--port', String(port), '9']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('UNKNOWN_COMMAND');
    expect(unknown.stdout).toBe('');

    // the server is still up after an error reply
    expect(server.running).toBe(true);
    const again = await runCli(['call', '--port', String(port), '1', 'still here']);
    expect(again.stdout).toBe('still here\n');

    server.child.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit.code).toBe(0);
    expect(exit.signal).toBeNull();
    expect(server.lines.some((l) => l.msg === 'diocp stopped')).toBe(true);
  });

  it('call: json codec, hex payloads, PING, and handler errors', async () => {
    const dir = await project();
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', testTransport], dir);
    const port = String((await server.listening()).port);

    const sum = await runCli(['call', '--port', port, '--codec', 'json', '2', '{"a":2,"b":40}']);
    expect(sum.code).toBe(0);
    expect(JSON.parse(sum.stdout)).toEqual({ sum: 42 });

    const badJson = await runCli(['call', '--port', port, '--codec', 'json', '2', 'not json']);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('JSON');

    const hex = await runCli(['call', '--port', port, '--hex', '1', '00ff10']);
    expect(hex.code).toBe(0);
    expect(hex.stdout).toBe('00ff10\n');

    const ping = await runCli(['call', '--port', port, '0xffff', 'are you there']);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toBe('are you there\n');

    const fail = await runCli(['call', '--port', port, '3']);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain('HANDLER_ERROR');
    expect(fail.stderr).toContain('handler blew up');
  });

  it('--transport auto uses the native transport when its addon loads', async () => {
    const dir = await project();
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', 'auto'], dir);
    const line = await server.listening();
    expect(line.transport).toBe('native');
    expect(server.lines.some((l) => /native transport not used/.test(l.msg))).toBe(false);
    const r = await runCli(['call', '--port', String(line.port), '1', 'auto']);
    expect(r.stdout).toBe('auto\n');
  });

  it('--transport auto falls back to net when the native addon is unavailable, and says why in one line', async () => {
    const dir = await project();
    // DIOCP_NATIVE_DISABLE=1 makes @diocp/native-iocp's loader refuse, as a failed build does.
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', 'auto'], dir, { DIOCP_NATIVE_DISABLE: '1' });
    const line = await server.listening();
    expect(line.transport).toBe('net');
    expect(line.dispatch).toBe('inline');
    const why = server.lines.filter((l) => /native transport not used/.test(l.msg));
    expect(why).toHaveLength(1);
    expect(why[0]!.msg).toContain('DIOCP_NATIVE_DISABLE=1 is set');
    const r = await runCli(['call', '--port', String(line.port), '1', 'auto']);
    expect(r.stdout).toBe('auto\n');
  });

  it('--config from another folder: handlers are found relative to the config file', async () => {
    const dir = await tempDir({
      'app/handlers/all.mjs': handlersModule(),
      'app/server.config.mjs': 'export default { handlers: ["./handlers"], transport: "net", host: "127.0.0.1" };\n',
      'elsewhere/.keep': '',
    });
    const server = startServer(['--config', '../app/server.config.mjs', '--port', '0'], path.join(dir, 'elsewhere'));
    const line = await server.listening();
    expect(line.config).toBe(path.join(dir, 'app/server.config.mjs'));
    expect(line.transport).toBe('net');
    const r = await runCli(['call', '--port', String(line.port), '1', 'relative']);
    expect(r.stdout).toBe('relative\n');
  });

  it('flags override the config file (port from the file is replaced by --port 0)', async () => {
    const dir = await tempDir({
      'handlers/all.mjs': handlersModule(),
      'diocp.config.json': JSON.stringify({ handlers: ['./handlers'], port: 1, transport: 'net', logLevel: 'info' }),
    });
    const server = startServer(['--port', '0', '--host', '127.0.0.1'], dir);
    const line = await server.listening();
    expect(line.port).not.toBe(1);
    expect(line.transport).toBe('net');
  });

  it('SIGINT also stops the server with exit 0', async () => {
    const dir = await project();
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', testTransport], dir);
    await server.listening();
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.code).toBe(0);
    expect(server.lines.some((l) => l.msg === 'diocp stopped')).toBe(true);
  });

  it('a port already in use: start fails with a non-zero exit naming the port', async () => {
    const dir = await project();
    const first = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', testTransport], dir);
    const port = String((await first.listening()).port);
    const r = await runCli(['start', '--port', port, '--host', '127.0.0.1', '--transport', testTransport], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain(port);
  });
});

describe('diocp start --dispatch local-pool', () => {
  it('runs handlers on the number of threads asked for, answers calls, and stops on SIGTERM', async () => {
    const dir = await project();
    const server = startServer(['--port', '0', '--host', '127.0.0.1', '--transport', testTransport, '--dispatch', 'local-pool', '--threads', '2'], dir);
    const line = await server.listening();
    expect(line.dispatch).toBe('local-pool');
    expect(line.threads).toBe(2);
    expect(line.msg).toContain('dispatch local-pool, 2 threads');
    const port = String(line.port);
    expect((await runCli(['call', '--port', port, '0x01', 'from a thread'])).stdout).toBe('from a thread\n');
    const sum = await runCli(['call', '--port', port, '--codec', 'json', '2', '{"a":2,"b":3}']);
    expect(JSON.parse(sum.stdout)).toEqual({ sum: 5 });
    const fail = await runCli(['call', '--port', port, '3']);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain('handler blew up');
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  });

  it('refuses a bad --threads, naming the flag', async () => {
    const dir = await project();
    const r = await runCli(['start', '--port', '0', '--dispatch', 'local-pool', '--threads', 'many'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--threads');
  });
});
