/**
 * The one error registry of @diocp/core. Every error the framework raises has a stable
 * code `DIOCP_ERR_<AREA>_<WHAT>`, a message template, and — when it travels on the wire —
 * the PROTOCOL.md status it maps to. docs/errors.md documents every code (a test checks).
 */
import { Status } from './protocol/constants.js';

type Template = (...args: never[]) => string;

interface ErrorDef {
  /** Wire status this error is answered with, when it answers a request. */
  readonly status?: number;
  readonly message: Template;
}

const hex = (n: number, width = 4) => '0x' + n.toString(16).padStart(width, '0');

export const errorDefs = {
  // --- protocol (status 1; the connection is closed after the error frame) ---
  DIOCP_ERR_PROTOCOL_BAD_MAGIC: {
    status: Status.PROTOCOL_ERROR,
    message: (got: number) => `bad magic ${hex(got)}, expected 0xd10c`,
  },
  DIOCP_ERR_PROTOCOL_BAD_VERSION: {
    status: Status.PROTOCOL_ERROR,
    message: (got: number) => `unsupported protocol version ${got}, this server speaks version 1`,
  },
  DIOCP_ERR_PROTOCOL_RESERVED_FLAG: {
    status: Status.PROTOCOL_ERROR,
    message: (flags: number) => `reserved flag bit set in flags ${hex(flags, 2)} (bits 0x10-0x80 must be 0)`,
  },
  DIOCP_ERR_PROTOCOL_BAD_DIRECTION: {
    status: Status.PROTOCOL_ERROR,
    message: (flags: number, side: string) => `flags ${hex(flags, 2)} are not allowed in a frame sent to the ${side}`,
  },
  DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE: {
    status: Status.PROTOCOL_ERROR,
    message: (length: number, max: number) => `frame length ${length} exceeds maxFrameSize ${max}`,
  },
  // --- request errors (connection stays open) ---
  DIOCP_ERR_ROUTER_UNKNOWN_COMMAND: {
    status: Status.UNKNOWN_COMMAND,
    message: (command: number) => `no handler is registered for command ${hex(command)}`,
  },
  DIOCP_ERR_HANDLER_FAILED: {
    status: Status.HANDLER_ERROR,
    message: (message: string) => message,
  },
  DIOCP_ERR_HANDLER_TIMEOUT: {
    status: Status.TIMEOUT,
    message: (command: number, ms: number) => `handler for command ${hex(command)} did not finish within ${ms} ms`,
  },
  DIOCP_ERR_DISPATCH_UNAVAILABLE: {
    status: Status.UNAVAILABLE,
    message: (why: string) => `no logic process could take the request: ${why}`,
  },
  DIOCP_ERR_DISPATCH_THREAD_DIED: {
    status: Status.HANDLER_ERROR,
    message: (why: string) => why,
  },
  DIOCP_ERR_DISPATCH_CURVE_AUTH: {
    message: (why: string) => `CURVE authenticator: ${why}`,
  },
  DIOCP_ERR_GATEWAY_OVERLOADED: {
    status: Status.OVERLOADED,
    message: (scope: string, limit: number) => `too many requests in flight ${scope} (limit ${limit}); retry later`,
  },
  DIOCP_ERR_GATEWAY_RESPONSE_TOO_LARGE: {
    status: Status.HANDLER_ERROR,
    message: (command: number, size: number, max: number) =>
      `response to command ${hex(command)} is ${size} bytes, over maxFrameSize ${max}`,
  },
  DIOCP_ERR_GATEWAY_BAD_PUSH: {
    message: (why: string) => `cannot push: ${why}`,
  },
  DIOCP_ERR_GATEWAY_SHUTTING_DOWN: {
    status: Status.UNAVAILABLE,
    message: () => 'the server is shutting down',
  },
  DIOCP_ERR_CODEC_DECODE: {
    status: Status.BAD_REQUEST,
    message: (command: number, codec: string, why: string) =>
      `payload of command ${hex(command)} is not valid ${codec}: ${why}`,
  },
  DIOCP_ERR_CODEC_ENCODE: {
    status: Status.HANDLER_ERROR,
    message: (command: number, codec: string, why: string) =>
      `result of command ${hex(command)} could not be encoded as ${codec}: ${why}`,
  },
  DIOCP_ERR_UNAUTHORIZED: {
    status: Status.UNAUTHORIZED,
    message: (why: string) => why || 'this command needs an authenticated session',
  },
  DIOCP_ERR_APPLICATION: {
    message: (message: string) => message,
  },
  // --- start-up errors: handlers ---
  DIOCP_ERR_COMMAND_DUPLICATE_ID: {
    message: (command: number, first: string, second: string) =>
      `command ${hex(command)} is declared twice: by ${first} and by ${second}`,
  },
  DIOCP_ERR_COMMAND_ID_RANGE: {
    message: (command: number, cls: string) =>
      `${cls}: command id ${Number.isInteger(command) ? hex(command) : String(command)} is outside the user range 0x0001-0xfeff`,
  },
  DIOCP_ERR_COMMAND_NO_HANDLE: {
    message: (cls: string) => `${cls} is decorated with @Command but has no handle(request, ctx) method`,
  },
  DIOCP_ERR_COMMAND_BAD_OPTION: {
    message: (cls: string, option: string, why: string) => `${cls}: @Command option "${option}" ${why}`,
  },
  DIOCP_ERR_COMMAND_NOT_DECORATED: {
    message: (cls: string) => `${cls} was registered as a handler but has no @Command decorator`,
  },
  DIOCP_ERR_COMMAND_RESOLVE: {
    message: (cls: string, why: string) => `${cls} could not be constructed by the DI container: ${why}`,
  },
  DIOCP_ERR_COMMAND_NONE: {
    message: (where: string) => `no @Command handler classes were found in ${where}`,
  },
  // --- config and CLI ---
  DIOCP_ERR_CONFIG_INVALID: {
    message: (key: string, why: string) => `config "${key}" ${why}`,
  },
  DIOCP_ERR_CONFIG_UNKNOWN_KEY: {
    message: (key: string, hint: string) => `unknown config key "${key}"${hint}`,
  },
  DIOCP_ERR_CONFIG_LOAD: {
    message: (file: string, why: string) => `cannot load config file ${file}: ${why}`,
  },
  DIOCP_ERR_CLI_USAGE: {
    message: (why: string) => why,
  },
  DIOCP_ERR_SERVER_STATE: {
    message: (why: string) => why,
  },
  // --- transport ---
  DIOCP_ERR_TRANSPORT_UNAVAILABLE: {
    message: (name: string, why: string) => `transport "${name}" is not available: ${why}`,
  },
  DIOCP_ERR_TRANSPORT_LISTEN: {
    message: (host: string, port: number, why: string) => `cannot listen on ${host}:${port}: ${why}`,
  },
  // --- client ---
  DIOCP_ERR_CLIENT_CONNECT: {
    message: (host: string, port: number, why: string) => `cannot connect to ${host}:${port}: ${why}`,
  },
  DIOCP_ERR_CLIENT_CLOSED: {
    message: (why: string) => `connection closed${why ? ': ' + why : ''}`,
  },
  DIOCP_ERR_CLIENT_TIMEOUT: {
    message: (command: number, ms: number) => `no response to command ${hex(command)} within ${ms} ms`,
  },
  DIOCP_ERR_CLIENT_QUEUE_FULL: {
    message: (limit: number) => `${limit} requests are already waiting for the connection to come back`,
  },
  DIOCP_ERR_CLIENT_BAD_ARGUMENT: {
    message: (what: string) => what,
  },
  DIOCP_ERR_REMOTE: {
    message: (status: number, name: string, message: string) => `server answered ${name} (${status}): ${message}`,
  },
  // --- remote dispatch (gateway ⇄ worker over ZeroMQ; never on the client wire) ---
  DIOCP_ERR_REMOTE_BIND: {
    message: (address: string, why: string) => `cannot bind the remote-dispatch ROUTER to ${address}: ${why}`,
  },
  DIOCP_ERR_REMOTE_CONNECT: {
    message: (address: string, why: string) => `cannot connect the worker to ${address}: ${why}`,
  },
  DIOCP_ERR_REMOTE_BAD_MESSAGE: {
    message: (peer: string, why: string) => `malformed worker-protocol message from ${peer}: ${why}`,
  },
  DIOCP_ERR_REMOTE_VERSION: {
    message: (got: number, want: number) => `worker protocol version ${got} is not supported; the gateway speaks version ${want}`,
  },
  DIOCP_ERR_REMOTE_REFUSED: {
    message: (why: string) => `the gateway refused this worker: ${why}`,
  },
} satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof errorDefs;
type ArgsOf<C extends ErrorCode> = Parameters<(typeof errorDefs)[C]['message']>;

/** Base class of every error @diocp/core throws. `code` is stable; `status` is the wire status, if any. */
export class DiocpError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiocpError';
    this.code = code;
    this.status = status;
  }
}

/** Build the registered error `code` with its message template. */
export function diocpError<C extends ErrorCode>(code: C, ...args: ArgsOf<C>): DiocpError {
  const def: ErrorDef = errorDefs[code];
  return new DiocpError(code, (def.message as (...a: unknown[]) => string)(...args), def.status);
}

/** A protocol violation: the peer's stream cannot be trusted any more; the connection is closed. */
export class ProtocolError extends DiocpError {
  /** Command and request id of the offending frame when its header could be trusted, else 0. */
  command = 0;
  requestId = 0;
  constructor(code: C_Protocol, message: string) {
    super(code, message, Status.PROTOCOL_ERROR);
    this.name = 'ProtocolError';
  }
}
type C_Protocol = Extract<ErrorCode, `DIOCP_ERR_PROTOCOL_${string}`>;

export function protocolError<C extends C_Protocol>(code: C, ...args: ArgsOf<C>): ProtocolError {
  return new ProtocolError(code, (errorDefs[code].message as (...a: unknown[]) => string)(...args));
}

/**
 * Throw this from a handler to answer with your own status (100–65535) and optional JSON data.
 * The client receives `{ code, message, data }` and raises a RemoteError with that status.
 */
export class ApplicationError extends DiocpError {
  readonly data: unknown;
  constructor(status: number, message: string, data?: unknown) {
    if (!Number.isInteger(status) || status < 100 || status > 0xffff) {
      throw new RangeError(`ApplicationError status must be an integer in 100..65535, got ${status}`);
    }
    super('DIOCP_ERR_APPLICATION', message, status);
    this.name = 'ApplicationError';
    this.data = data;
  }
}

/** Client side: the server answered with an ERROR frame. `status` is the wire status. */
export class RemoteError extends DiocpError {
  readonly statusName: string;
  readonly remoteMessage: string;
  readonly data: unknown;
  readonly command: number;
  constructor(status: number, statusName: string, remoteMessage: string, command: number, data?: unknown) {
    super('DIOCP_ERR_REMOTE', errorDefs.DIOCP_ERR_REMOTE.message(status, statusName, remoteMessage), status);
    this.name = 'RemoteError';
    this.statusName = statusName;
    this.remoteMessage = remoteMessage;
    this.command = command;
    this.data = data;
  }
}
