/**
 * The error registry of @diocp/native-iocp (docs/errors.md documents every code). Errors the
 * addon itself raises (DIOCP_ERR_NATIVE_LISTEN, DIOCP_ERR_NATIVE_ARGUMENT) carry `errno` and
 * `syscall` too; see src/native.ts.
 */
export const nativeErrorDefs = {
  DIOCP_ERR_NATIVE_UNAVAILABLE: (why: string) => `the native transport is not available: ${why}`,
  DIOCP_ERR_NATIVE_LISTEN: (host: string, port: number, why: string) => `cannot listen on ${host}:${port}: ${why}`,
  DIOCP_ERR_NATIVE_ARGUMENT: (why: string) => why,
  DIOCP_ERR_NATIVE_STATE: (why: string) => why,
} as const;

export type NativeErrorCode = keyof typeof nativeErrorDefs;

/** Every error this package throws: a stable `code`, and `errno`/`syscall` when a system call failed. */
export class NativeTransportError extends Error {
  readonly code: NativeErrorCode;
  readonly errno: number;
  readonly syscall: string;
  constructor(code: NativeErrorCode, message: string, errno = 0, syscall = '', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeTransportError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

export function nativeError<C extends NativeErrorCode>(code: C, ...args: Parameters<(typeof nativeErrorDefs)[C]>): NativeTransportError {
  return new NativeTransportError(code, (nativeErrorDefs[code] as (...a: unknown[]) => string)(...args));
}
