import type { Frame } from '../codec/frame.js';
import type { ProtocolError } from '../errors.js';

/**
 * The contract between diocp and a communication layer (node:net here, native-iocp later).
 * A transport only moves bytes and frames: it reassembles frames, enforces the frame-size
 * limit, coalesces sends, bounds each connection's send queue and closes idle connections.
 * Both implementations pass test/transport/conformance.ts.
 */
export interface Transport {
  /** `net` or `native`, printed at start-up. */
  readonly name: string;
  /**
   * True when the transport answers a protocol error itself, with the frame the receiver
   * would send (native-iocp does, without calling JavaScript); the receiver's own send for it
   * is then refused, and the receiver counts the transport's frame as sent.
   */
  readonly answersProtocolErrors?: boolean;
  /** Start listening; resolves with the address actually bound (port 0 picks a free port). */
  listen(events: TransportEvents): Promise<{ host: string; port: number }>;
  /**
   * Queue one frame for a connection. Frames queued in one tick go out in one write.
   * Returns false when the connection is gone (the frame is dropped).
   * The payload — bytes `start` to `end` of `payload`, all of it by default — is copied
   * before `send` returns.
   */
  send(conn: number, flags: number, command: number, status: number, requestId: number, payload: Uint8Array, start?: number, end?: number): boolean;
  /** Flush what is queued for `conn`, then close it. */
  close(conn: number): void;
  /** Stop accepting new connections; existing ones stay open. */
  stopAccepting(): Promise<void>;
  /** Stop reading from every connection (graceful shutdown: nothing new is read). */
  pauseReading(): void;
  /** Flush every queue, close every connection and release the listener. */
  shutdown(): Promise<void>;
  stats(): TransportStats;
}

export interface TransportEvents {
  onOpen(conn: number, remote: RemoteAddress): void;
  /**
   * Every complete frame of one read, in order: one call per read, never per frame.
   * The array is only valid during the call; payloads stay valid afterwards (a transport
   * never reuses memory it handed out), so async handlers may keep them.
   */
  onFrames(conn: number, frames: Frame[]): void;
  /**
   * Optional fast path, offered by a receiver that implements both `onFrame` and
   * `onFramesEnd`: a transport may then deliver a read's frames one by one (no Frame object
   * or array per read), followed by one `onFramesEnd(conn)`, instead of calling `onFrames`.
   * Same order, same payload validity; the frame's status field is not passed (requests have none).
   * A transport may ignore it (node:net does); the conformance suite uses `onFrames`.
   */
  onFrame?(conn: number, flags: number, command: number, requestId: number, payload: Buffer): void;
  onFramesEnd?(conn: number): void;
  /**
   * The peer broke the protocol. Frames of the same read that preceded the bad one were
   * delivered first. The transport has stopped reading from `conn`; the receiver answers
   * with an error frame and calls `close(conn)`.
   */
  onProtocolError(conn: number, error: ProtocolError): void;
  onClose(conn: number, reason: CloseReason): void;
}

export interface RemoteAddress {
  address: string;
  port: number;
}

/**
 * Why a connection ended: `peer` closed it, it was `idle` too long, it was too `slow` to take
 * its responses (send queue over the bound), the server `closed` it, or a socket `error`.
 */
export type CloseReason = 'peer' | 'idle' | 'slow' | 'closed' | 'error';

export interface TransportOptions {
  host: string;
  port: number;
  /** Largest payload accepted, checked from the header. */
  maxFrameSize: number;
  /** Connections over this number are closed right after accept. */
  maxConnections: number;
  /** A connection that sends nothing for this long is closed; 0 disables. */
  idleTimeoutMs: number;
  /** Bytes a connection may have waiting to be sent; over it the connection is closed as `slow`. */
  maxSendQueueBytes: number;
}

export interface TransportStats {
  connections: number;
  accepted: number;
  rejected: number;
  closedIdle: number;
  closedSlow: number;
  bytesIn: number;
  bytesOut: number;
  /** Socket writes issued: with coalescing, far fewer than frames sent. */
  writes: number;
  /**
   * Bytes accepted by `send()` and not yet handed to the kernel, all connections together:
   * the backpressure the gateway can see. Optional for other transports; both built-in ones
   * report it.
   */
  sendQueueBytes?: number;
}
