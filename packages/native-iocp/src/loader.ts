/**
 * The one place the addon is loaded. The install script (scripts/install.mjs) builds it into
 * build/Release/diocp_native.node, or — when the build fails — writes the reason to
 * build/BUILD_FAILED.txt, which is quoted here so that @diocp/core can log why it fell back.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeTransportError } from './errors.js';
import type { NativeAddon } from './native.js';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const addonPath = path.join(packageRoot, 'build', 'Release', 'diocp_native.node');
export const buildFailedPath = path.join(packageRoot, 'build', 'BUILD_FAILED.txt');

let cached: NativeAddon | null = null;
let failure: NativeTransportError | null = null;

/** Why the addon cannot be used, as one line. */
function reasonFor(err: unknown): string {
  if (fs.existsSync(buildFailedPath)) {
    const text = fs.readFileSync(buildFailedPath, 'utf8').trim().split('\n')[0] ?? '';
    return `the addon failed to build at install (${path.relative(process.cwd(), buildFailedPath) || buildFailedPath}): ${text}`;
  }
  if (!fs.existsSync(addonPath)) return `the addon was never built (${addonPath} is missing; run npm run build:native -w @diocp/native-iocp)`;
  return `the addon did not load: ${(err as Error).message.split('\n')[0]}`;
}

/** The addon, or a NativeTransportError (DIOCP_ERR_NATIVE_UNAVAILABLE) saying why not. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (failure) throw failure;
  try {
    if (process.env.DIOCP_NATIVE_DISABLE === '1') throw new Error('DIOCP_NATIVE_DISABLE=1 is set');
    cached = createRequire(import.meta.url)(addonPath) as NativeAddon;
    return cached;
  } catch (err) {
    const why = process.env.DIOCP_NATIVE_DISABLE === '1' ? 'DIOCP_NATIVE_DISABLE=1 is set' : reasonFor(err);
    failure = new NativeTransportError('DIOCP_ERR_NATIVE_UNAVAILABLE', `the native transport is not available: ${why}`, 0, '', { cause: err });
    (failure as NativeTransportError & { reason: string }).reason = why;
    throw failure;
  }
}
