/**
 * The transport contract, structurally identical to @diocp/core's src/transport/transport.ts.
 * Duplicated on purpose: this package knows frames, not handlers, and depends on core neither
 * at runtime nor at build time. test/contract-types.test.ts checks both agree (type-level).
 */

export interface Frame {
  flags: number;
  command: number;
  status: number;
  requestId: number;
  payload: Buffer;
}

export interface RemoteAddress {
  address: string;
  port: number;
}

export type CloseReason = 'peer' | 'idle' | 'slow' | 'closed' | 'error';

/** What onProtocolError receives: core's ProtocolError fields (core may supply real instances). */
export interface ProtocolErrorLike extends Error {
  code: string;
  status?: number;
  command: number;
  requestId: number;
}

export interface TransportEvents<E extends ProtocolErrorLike = ProtocolErrorLike> {
  onOpen(conn: number, remote: RemoteAddress): void;
  onFrames(conn: number, frames: Frame[]): void;
  /** Optional fast path (see core's transport.ts): frames one by one, then onFramesEnd per read. */
  onFrame?(conn: number, flags: number, command: number, requestId: number, payload: Buffer): void;
  onFramesEnd?(conn: number): void;
  onProtocolError(conn: number, error: E): void;
  onClose(conn: number, reason: CloseReason): void;
}

export interface TransportOptions {
  host: string;
  port: number;
  maxFrameSize: number;
  maxConnections: number;
  idleTimeoutMs: number;
  maxSendQueueBytes: number;
}

/** createTransport's options: the contract's, plus what only the native layer has. */
export interface NativeTransportOptions extends TransportOptions {
  /** Capacity of the IO thread -> JavaScript event ring, in records (default 65536, at least 8192). */
  ringRecords?: number;
}

export interface TransportStats {
  connections: number;
  accepted: number;
  rejected: number;
  closedIdle: number;
  closedSlow: number;
  bytesIn: number;
  bytesOut: number;
  writes: number;
  /** Bytes accepted by send() and not yet written to a socket (backpressure). */
  sendQueueBytes: number;
}

/**
 * Hooks @diocp/core passes so that what the native transport reports has core's own types
 * (a real ProtocolError, core's listen error), without this package importing core.
 */
export interface NativeTransportHooks<E extends ProtocolErrorLike = ProtocolErrorLike> {
  protocolError?(code: string, message: string, command: number, requestId: number): E;
  listenError?(host: string, port: number, why: string, cause: Error): Error;
}
