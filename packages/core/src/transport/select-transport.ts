import { diocpError, ProtocolError, type ErrorCode } from '../errors.js';
import type { TransportChoice } from '../config/options.js';
import { NetTransport } from './transport-net.js';
import type { Transport, TransportOptions } from './transport.js';

/** Name of the package that provides the native transport. */
export const NATIVE_PACKAGE = '@diocp/native-iocp';

/** What core uses of @diocp/native-iocp (declared here: core does not depend on it at build time). */
interface NativeModule {
  createTransport(
    options: TransportOptions,
    hooks: {
      protocolError(code: string, message: string, command: number, requestId: number): ProtocolError;
      listenError(host: string, port: number, why: string, cause: Error): Error;
    },
  ): Transport;
}

/**
 * Hooks that make the native transport report core's own errors: a real ProtocolError for
 * onProtocolError, DIOCP_ERR_TRANSPORT_LISTEN for a failed listen (the native error, with its
 * errno and syscall, is the cause).
 */
export const nativeHooks = {
  protocolError(code: string, message: string, command: number, requestId: number): ProtocolError {
    const err = new ProtocolError(code as Extract<ErrorCode, `DIOCP_ERR_PROTOCOL_${string}`>, message);
    err.command = command;
    err.requestId = requestId;
    return err;
  },
  listenError(host: string, port: number, why: string, cause: Error): Error {
    const err = diocpError('DIOCP_ERR_TRANSPORT_LISTEN', host, port, why);
    (err as Error).cause = cause;
    return err;
  },
};

/**
 * `net` → node:net. `native` → the native package, or DIOCP_ERR_TRANSPORT_UNAVAILABLE naming the
 * reason (not installed, failed to build at install, failed to load). `auto` → native when it
 * loads, else node:net with `fallbackReason` saying why (the server logs it in one line).
 */
export async function selectTransport(
  choice: TransportChoice,
  options: TransportOptions,
): Promise<{ transport: Transport; fallbackReason?: string }> {
  if (choice === 'net') return { transport: new NetTransport(options) };
  let why: string;
  try {
    const native = (await import(NATIVE_PACKAGE as string)) as NativeModule;
    return { transport: native.createTransport(options, nativeHooks) };
  } catch (err) {
    const e = err as { code?: string; reason?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND') why = `${NATIVE_PACKAGE} is not installed`;
    else if (e.code === 'DIOCP_ERR_NATIVE_UNAVAILABLE' && e.reason) why = e.reason;
    else why = e.message ?? String(err);
  }
  if (choice === 'native') throw diocpError('DIOCP_ERR_TRANSPORT_UNAVAILABLE', 'native', why);
  return { transport: new NetTransport(options), fallbackReason: why };
}
