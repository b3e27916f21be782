// `diocp keygen`: the printed pair is valid, belongs together, and survives a paste into a shell.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkKey, publicKeyOf } from '../../src/dispatch/remote/curve.js';
import { assertBuilt, bin, runCli } from '../cli/helpers.js';

function parseEnvLines(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(DIOCP_CURVE_[A-Z_]+)='([^']*)'$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe('diocp keygen', () => {
  it('prints a public and a secret key that belong together, as pasteable lines; a new pair each run', async () => {
    assertBuilt();
    const a = await runCli(['keygen']);
    const b = await runCli(['keygen']);
    expect(a.code).toBe(0);
    expect(a.stderr).toBe('');
    const ka = parseEnvLines(a.stdout);
    const kb = parseEnvLines(b.stdout);
    expect(Object.keys(ka).sort()).toEqual(['DIOCP_CURVE_PUBLIC_KEY', 'DIOCP_CURVE_SECRET_KEY']);
    expect(checkKey('public', ka.DIOCP_CURVE_PUBLIC_KEY)).toBe(ka.DIOCP_CURVE_PUBLIC_KEY);
    expect(checkKey('secret', ka.DIOCP_CURVE_SECRET_KEY)).toBe(ka.DIOCP_CURVE_SECRET_KEY);
    expect(publicKeyOf(ka.DIOCP_CURVE_SECRET_KEY!)).toBe(ka.DIOCP_CURVE_PUBLIC_KEY);
    expect(kb.DIOCP_CURVE_SECRET_KEY).not.toBe(ka.DIOCP_CURVE_SECRET_KEY);
    // Every other line is a comment, so the whole output can go into an .env file or eval.
    for (const line of a.stdout.trim().split('\n')) expect(line.startsWith('#') || line.startsWith('DIOCP_CURVE_')).toBe(true);
  });

  it('its output pasted into sh sets the variables to exactly the keys (Z85 has $, &, ( … but no quote)', async () => {
    assertBuilt();
    // Several runs: each pair has a fair chance of containing $, !, &, ( or ).
    for (let i = 0; i < 3; i++) {
      const r = await new Promise<{ stdout: string; err: Error | null }>((resolve) => {
        const script = `eval "$("${process.execPath}" "${bin}" keygen)"; printf '%s\\n%s\\n' "$DIOCP_CURVE_PUBLIC_KEY" "$DIOCP_CURVE_SECRET_KEY"`;
        execFile('sh', ['-c', script], { timeout: 10_000 }, (err, stdout) => resolve({ stdout: String(stdout), err }));
      });
      expect(r.err).toBeNull();
      const [pub, sec] = r.stdout.trim().split('\n');
      expect(pub).toHaveLength(40);
      expect(publicKeyOf(sec!)).toBe(pub);
    }
  });

  it('--json prints {publicKey, secretKey}', async () => {
    assertBuilt();
    const r = await runCli(['keygen', '--json']);
    expect(r.code).toBe(0);
    const pair = JSON.parse(r.stdout) as { publicKey: string; secretKey: string };
    expect(Object.keys(pair).sort()).toEqual(['publicKey', 'secretKey']);
    expect(publicKeyOf(pair.secretKey)).toBe(pair.publicKey);
  });

  it('--help prints the keygen usage; diocp --help lists keygen', async () => {
    assertBuilt();
    const r = await runCli(['keygen', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: diocp keygen');
    const top = await runCli(['--help']);
    expect(top.stdout).toMatch(/^\s+keygen\s/m);
  });

  it('an argument or an unknown flag: exit 2, DIOCP_ERR_CLI_USAGE with the keygen usage, no key printed', async () => {
    assertBuilt();
    for (const args of [['keygen', 'extra'], ['keygen', '--bits', '4096']]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('DIOCP_ERR_CLI_USAGE');
      expect(r.stderr).toContain(args[1]);
      expect(r.stderr).toContain('Usage: diocp keygen');
    }
  });
});
