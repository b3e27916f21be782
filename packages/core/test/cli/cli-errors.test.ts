import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { useTempDirs, coreDir, handlersModule, runCli } from './helpers.js';

const tempDir = useTempDirs('diocp-cli-err-');



describe('diocp: usage errors exit 2', () => {
  it('an unknown flag of start: exit 2, stderr names the flag and shows the start usage', async () => {
    const r = await runCli(['start', '--bogus'], { cwd: await tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus');
    expect(r.stderr).toContain('Usage: diocp start');
    expect(r.stderr).toContain('DIOCP_ERR_CLI_USAGE');
    expect(r.stdout).toBe('');
  });

  it('an unknown command: exit 2, stderr names it and shows the usage', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('frobnicate');
    expect(r.stderr).toContain('Usage: diocp <command>');
  });

  it('no command at all: exit 2 with the usage', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('Usage: diocp <command>');
  });

  it('start --port 99999: non-zero, the message names --port', async () => {
    const r = await runCli(['start', '--port', '99999'], { cwd: await tempDir() });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('--port');
    expect(r.stderr).toContain('99999');
  });

  for (const bad of ['abc', '-1', '1.5', '']) {
    it(`start --port=${JSON.stringify(bad)}: non-zero, names --port`, async () => {
      const r = await runCli(['start', `--port=${bad}`], { cwd: await tempDir() });
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(r.stderr).toContain('--port');
    });
  }

  it('call without --port: exit 2 naming --port', async () => {
    const r = await runCli(['call', '1', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port');
    expect(r.stderr).toContain('Usage: diocp call');
  });

  it('call with an unknown flag: exit 2 naming it', async () => {
    const r = await runCli(['call', '--port', '7001', '--nope', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--nope');
  });

  it('call with a command id out of range: exit 2 naming the command', async () => {
    const r = await runCli(['call', '--port', '7001', '0x10000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('command');
  });

  it('call with an unknown codec: exit 2 naming --codec', async () => {
    const r = await runCli(['call', '--port', '7001', '--codec', 'xml', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--codec');
  });
});

describe('diocp start: config errors', () => {
  it('--transport quantum: non-zero, the message names "transport" and the bad value', async () => {
    const r = await runCli(['start', '--port', '0', '--transport', 'quantum'], { cwd: await tempDir() });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('"transport"');
    expect(r.stderr).toContain('quantum');
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_INVALID');
  });

  it('--log-level loud: non-zero, names logLevel', async () => {
    const r = await runCli(['start', '--port', '0', '--log-level', 'loud'], { cwd: await tempDir() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('logLevel');
  });

  it('a config file (--config) with an unknown key: non-zero, names the key, the hint and the file', async () => {
    const dir = await tempDir({ 'bad.config.mjs': 'export default { prot: 7001 };\n' });
    const r = await runCli(['start', '--config', 'bad.config.mjs', '--port', '0'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('"prot"');
    expect(r.stderr).toContain('did you mean "port"');
    expect(r.stderr).toContain(path.join(dir, 'bad.config.mjs'));
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
  });

  it('a found config file with an invalid value: non-zero, names the key and the file', async () => {
    const dir = await tempDir({ 'diocp.config.json': '{ "maxConnections": 0 }' });
    const r = await runCli(['start', '--port', '0'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"maxConnections"');
    expect(r.stderr).toContain(path.join(dir, 'diocp.config.json'));
  });

  it('--config naming a missing file: non-zero with DIOCP_ERR_CONFIG_LOAD and the path', async () => {
    const dir = await tempDir();
    const r = await runCli(['start', '--config', 'missing.mjs'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_LOAD');
    expect(r.stderr).toContain(path.join(dir, 'missing.mjs'));
  });

  it('a config whose handlers path does not exist: non-zero, names "handlers"', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'export default { handlers: ["./dist/handlers"] };\n' });
    const r = await runCli(['start', '--port', '0', '--transport', 'net'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"handlers"');
    expect(r.stderr).toContain('DIOCP_ERR_CONFIG_INVALID');
  });

  it('no handlers configured: non-zero with DIOCP_ERR_COMMAND_NONE', async () => {
    const r = await runCli(['start', '--port', '0', '--transport', 'net'], { cwd: await tempDir() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DIOCP_ERR_COMMAND_NONE');
  });

  it('--transport native when the native addon is unavailable: non-zero with DIOCP_ERR_TRANSPORT_UNAVAILABLE and the reason', async () => {
    const dir = await tempDir({
      'handlers/all.mjs': handlersModule(),
      'diocp.config.mjs': 'export default { handlers: ["./handlers"] };\n',
    });
    // DIOCP_NATIVE_DISABLE=1 makes @diocp/native-iocp's loader refuse, as a failed build does.
    const r = await runCli(['start', '--port', '0', '--host', '127.0.0.1', '--transport', 'native'], { cwd: dir, env: { DIOCP_NATIVE_DISABLE: '1' } });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('DIOCP_ERR_TRANSPORT_UNAVAILABLE');
    expect(r.stderr).toContain('native');
    expect(r.stderr).toContain('DIOCP_NATIVE_DISABLE=1 is set');
  });
});

describe('diocp: help and version', () => {
  it('--version prints the package version and exits 0', async () => {
    const pkg = JSON.parse(readFileSync(path.join(coreDir, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('start --help and call --help print their usage and exit 0', async () => {
    const s = await runCli(['start', '--help'], { cwd: await tempDir() });
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('Usage: diocp start');
    const c = await runCli(['call', '-h']);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('Usage: diocp call');
  });
});

describe('diocp call: connection errors', () => {
  it('call --port 1 against a closed port: exit 1 with DIOCP_ERR_CLIENT_CONNECT', async () => {
    const r = await runCli(['call', '--port', '1', '1', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DIOCP_ERR_CLIENT_CONNECT');
  });

  it('call against a port that was just freed: exit 1 with DIOCP_ERR_CLIENT_CONNECT naming host:port', async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const r = await runCli(['call', '--host', '127.0.0.1', '--port', String(port), '1', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DIOCP_ERR_CLIENT_CONNECT');
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
  });
});
