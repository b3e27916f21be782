/**
 * The native boundary: declarations only, of everything `build/Release/diocp_native.node`
 * exports (src/native/binding.cc). test/native-exports.test.ts checks the addon against this
 * file, name by name. Nothing here runs.
 */

/** Options of one native server; the same meaning as @diocp/core's TransportOptions. */
export interface NativeServerOptions {
  host: string;
  port: number;
  maxFrameSize: number;
  maxConnections: number;
  idleTimeoutMs: number;
  maxSendQueueBytes: number;
  /** Capacity of the IO thread -> JavaScript event ring, in records (rounded up to a power of two). */
  ringRecords?: number;
}

/**
 * Called on the JavaScript thread once per batch: records `[tail, head)` of `records` (indexes
 * taken modulo the ring's capacity, each record `RECORD_WORDS` u32 words) are ready. `blocks`
 * holds one ArrayBuffer per BLOCK record and per FRAME_OWNED record with a non-empty payload,
 * in record order; undefined when the batch has none. The memory of those ArrayBuffers is
 * never reused: payload views stay valid for as long as they are referenced.
 */
export type BatchCallback = (tail: number, head: number, blocks: ArrayBuffer[] | undefined) => void;

/** One listening socket and its IO thread. */
export declare class NativeServer {
  /**
   * Bind, listen and start the IO thread. Throws a {@link NativeError}
   * (`DIOCP_ERR_NATIVE_LISTEN`) when the socket cannot be bound.
   */
  constructor(options: NativeServerOptions, onBatch: BatchCallback);
  /** The bound port (port 0 picks a free one). */
  readonly port: number;
  /** The event ring, shared with the IO thread (read-only for JavaScript). */
  readonly records: Uint32Array;
  /** 64-bit counters written by the IO thread, indexed by the `CNT_*` constants. */
  readonly counters: BigUint64Array;
  /**
   * Hand the IO thread a stream of ops (`OP_*`: 4 LE u32 words `type, slot, gen, len`, then
   * `len` bytes padded to 4). Copied into send blocks before return.
   */
  submit(ops: Uint8Array, length: number): void;
  /**
   * Refuse new connections at once (before returning); an OP_STOP_ACCEPT or OP_SHUTDOWN must
   * follow, with which the IO thread closes the listening socket.
   */
  stopAccepting(): void;
  /** Stop the IO thread (at once, unless a shutdown op already ended it) and free everything. */
  dispose(): void;
}

/** Numbers shared by the C++ engine and the wrapper; read from the addon, never written twice. */
export interface NativeConstants {
  OP_SEND: number;
  OP_CLOSE: number;
  OP_PROTO_CLOSE: number;
  OP_PAUSE: number;
  OP_STOP_ACCEPT: number;
  OP_SHUTDOWN: number;
  OP_ABORT_SLOW: number;
  REC_BLOCK: number;
  REC_FRAME: number;
  REC_FRAME_OWNED: number;
  REC_OPEN: number;
  REC_PROTO_ERROR: number;
  REC_CLOSE: number;
  REC_DONE: number;
  RECORD_WORDS: number;
  CNT_CONNECTIONS: number;
  CNT_ACCEPTED: number;
  CNT_REJECTED: number;
  CNT_CLOSED_IDLE: number;
  CNT_CLOSED_SLOW: number;
  CNT_BYTES_IN: number;
  CNT_BYTES_OUT: number;
  CNT_WRITES: number;
  CNT_READS: number;
  CNT_FRAMES_IN: number;
  CNT_PROTOCOL_ERRORS: number;
  CNT_QUEUED_BYTES: number;
  CNT_WAKEUPS: number;
  CNT_SUBMITS: number;
  CNT_ACCEPT_ERRORS: number;
  CNT_THROTTLED: number;
  COUNTER_COUNT: number;
  ARENA_BLOCK_SIZE: number;
  SEND_BLOCK_SIZE: number;
  CLOSE_GRACE_MS: number;
}

/** An error raised by the addon: a stable code plus the failing system call. */
export interface NativeError extends Error {
  code: 'DIOCP_ERR_NATIVE_LISTEN' | 'DIOCP_ERR_NATIVE_ARGUMENT';
  /** Negative errno, as node reports it (0 when no system call failed). */
  errno: number;
  /** `bind`, `listen`, `socket`, `getaddrinfo`, `epoll_create1`, `epoll_ctl`, or '' */
  syscall: string;
  /** `EADDRINUSE`, ... */
  errnoName: string;
}

/** What the addon exports. */
export interface NativeAddon {
  NativeServer: typeof NativeServer;
  constants: NativeConstants;
  /**
   * The code and message the native layer puts in its error frame for a decode error
   * (`kind` = a PROTOCOL_ERROR record's word 3); the wrapper uses it for onProtocolError.
   */
  describeError(kind: number, value: number, limit: number): { code: string; message: string };
}
