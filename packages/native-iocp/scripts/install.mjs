#!/usr/bin/env node
// Build the addon at install time with npm's own node-gyp against the installed Node headers,
// never downloading them. A failed build must not fail `npm install`: the reason goes to
// build/BUILD_FAILED.txt, @diocp/core then falls back to node:net and logs that reason
// (and `--transport native` fails with it).
//
// Env: DIOCP_NATIVE_SKIP_BUILD=1 skips the build (recorded as the reason).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build');
const failedFile = path.join(buildDir, 'BUILD_FAILED.txt');
const addon = path.join(buildDir, 'Release', 'diocp_native.node');

function fail(reason, detail = '') {
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(failedFile, `${reason}\n${detail}`);
  console.warn(`@diocp/native-iocp: native build failed, @diocp/core will use node:net: ${reason} (details: ${failedFile})`);
  process.exit(0);
}

/** npm's bundled node-gyp: npm tells install scripts where it is; else next to this node's npm. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: fine, npm bundles one
  }
  return candidates.find((p) => p && fs.existsSync(p));
}

if (process.env.DIOCP_NATIVE_SKIP_BUILD === '1') fail('DIOCP_NATIVE_SKIP_BUILD=1 was set at install');
const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (neither npm_config_node_gyp nor npm\'s bundled copy next to node)');

const args = [gyp, 'rebuild'];
// The headers of the running node, when they are installed beside it: no download.
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node.h'))) args.push(`--nodedir=${prefix}`);
const started = Date.now();
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_nodedir: args.find((a) => a.startsWith('--nodedir='))?.slice(10) ?? process.env.npm_config_nodedir } });
if (r.error) fail(`node-gyp did not run: ${r.error.message}`);
if (r.status !== 0) {
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const first = out.split('\n').find((l) => /error|not found|No such/i.test(l) && !/^gyp info/.test(l))?.trim() ?? `node-gyp exited with ${r.status}`;
  fail(`node-gyp rebuild failed: ${first}`, out.slice(-8000));
}
// Built: check it loads in this node, so a broken addon is reported now, not at first use.
try {
  createRequire(import.meta.url)(addon);
} catch (err) {
  fail(`the addon built but does not load: ${err.message.split('\n')[0]}`);
}
fs.rmSync(failedFile, { force: true });
console.log(`@diocp/native-iocp: addon built in ${((Date.now() - started) / 1000).toFixed(1)} s (${path.relative(root, addon)})`);
