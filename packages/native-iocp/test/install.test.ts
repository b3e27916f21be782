/**
 * The install script on a failing build: `npm install` must still succeed, the reason lands in
 * build/BUILD_FAILED.txt, and the loader quotes it (what @diocp/core logs when it falls back).
 * Runs on a copy of the package so the real build is untouched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = path.resolve(import.meta.dirname, '..');
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'diocp-native-install-'));
for (const entry of ['package.json', 'binding.gyp', 'scripts', 'src', 'dist']) fs.cpSync(path.join(pkg, entry), path.join(copy, entry), { recursive: true });
fs.mkdirSync(path.join(copy, 'node_modules'));
fs.symlinkSync(path.resolve(pkg, '../../node_modules/node-addon-api'), path.join(copy, 'node_modules', 'node-addon-api'));

afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

function install(env: Record<string, string>) {
  return spawnSync(process.execPath, [path.join(copy, 'scripts', 'install.mjs')], { cwd: copy, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

async function loaderReason(): Promise<{ code: string; reason: string }> {
  const loader = (await import(path.join(copy, 'dist', 'loader.js'))) as { loadAddon(): unknown };
  try {
    loader.loadAddon();
  } catch (err) {
    return err as { code: string; reason: string };
  }
  throw new Error('the addon loaded');
}

describe('install script', () => {
  it('a compiler that fails: exit 0, the reason in build/BUILD_FAILED.txt, quoted by the loader', async () => {
    const r = install({ CXX: '/bin/false', CC: '/bin/false' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('native build failed');
    const text = fs.readFileSync(path.join(copy, 'build', 'BUILD_FAILED.txt'), 'utf8');
    expect(text.split('\n')[0]).toMatch(/^node-gyp rebuild failed: /);
    expect(fs.existsSync(path.join(copy, 'build', 'Release', 'diocp_native.node'))).toBe(false);
    const err = await loaderReason();
    expect(err.code).toBe('DIOCP_ERR_NATIVE_UNAVAILABLE');
    expect(err.reason).toContain('the addon failed to build at install');
    expect(err.reason).toContain(text.split('\n')[0]);
  });

  it('DIOCP_NATIVE_SKIP_BUILD=1: exit 0 and the reason recorded', () => {
    const r = install({ DIOCP_NATIVE_SKIP_BUILD: '1' });
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(copy, 'build', 'BUILD_FAILED.txt'), 'utf8')).toContain('DIOCP_NATIVE_SKIP_BUILD=1');
  });
});
