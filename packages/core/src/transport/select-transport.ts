import { diocpError } from '../errors.js';
import type { TransportChoice } from '../config/options.js';
import { NetTransport } from './transport-net.js';
import type { Transport, TransportOptions } from './transport.js';

/** Name of the package that provides the native transport (built by its own issue). */
export const NATIVE_PACKAGE = '@diocp/native-iocp';

interface NativeModule {
  createTransport(options: TransportOptions): Transport;
}

/**
 * `net` → node:net. `native` → the native package, or a clear error when it is not installed.
 * `auto` → native when it loads, else node:net; `fallbackReason` says why native was not used.
 */
export async function selectTransport(
  choice: TransportChoice,
  options: TransportOptions,
): Promise<{ transport: Transport; fallbackReason?: string }> {
  if (choice === 'net') return { transport: new NetTransport(options) };
  let native: NativeModule;
  try {
    native = (await import(NATIVE_PACKAGE as string)) as NativeModule;
  } catch (err) {
    const why = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' ? `${NATIVE_PACKAGE} is not installed` : (err as Error).message;
    if (choice === 'native') throw diocpError('DIOCP_ERR_TRANSPORT_UNAVAILABLE', 'native', why);
    return { transport: new NetTransport(options), fallbackReason: why };
  }
  return { transport: native.createTransport(options) };
}
