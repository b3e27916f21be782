import { NativeTransport } from './transport-native.js';
import type { NativeTransportHooks, NativeTransportOptions, ProtocolErrorLike } from './types.js';

export { NativeTransport } from './transport-native.js';
export { loadAddon, addonPath, buildFailedPath } from './loader.js';
export { NativeTransportError, nativeErrorDefs, type NativeErrorCode } from './errors.js';
export type * from './types.js';
export type { NativeAddon, NativeConstants, NativeServerOptions, NativeError, BatchCallback } from './native.js';

/**
 * A native transport for @diocp/core (or any user of the same contract). Throws a
 * NativeTransportError (DIOCP_ERR_NATIVE_UNAVAILABLE, with `reason`) when the addon is not
 * built or does not load.
 */
export function createTransport<E extends ProtocolErrorLike = ProtocolErrorLike>(options: NativeTransportOptions, hooks?: NativeTransportHooks<E>): NativeTransport<E> {
  return new NativeTransport<E>(options, hooks);
}
