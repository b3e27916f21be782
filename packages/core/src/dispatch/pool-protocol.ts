// What crosses between the gateway thread and a handler thread in local-pool mode. Internal.
import type { ErrorBody } from './outcome.js';

/** How a thread builds its handler table (same for every batch of one server). */
export interface PoolInit {
  /** Absolute paths of the compiled handler modules. */
  handlerModules: string[];
  /** Absolute path of a module whose default export (container) => void registers DI tokens. */
  setup: string | null;
  debug: boolean;
  defaultTimeoutMs: number;
  maxFrameSize: number;
  logLevel: string;
}

/** Request progress in a batch's status array (Int32 per request, then one progress counter). */
export const enum ReqState {
  Queued = 0,
  Started = 1,
  Finished = 2,
}

export interface PoolBatch {
  init: PoolInit;
  /** Identifies `init`; a thread builds its table once per key. */
  initKey: string;
  /**
   * Int32Array(n + 1): ReqState per request; [n] a progress counter, bumped when a request
   * starts and every few ms while handlers await (stuck-thread detection).
   */
  status: SharedArrayBuffer;
  // Typed arrays: they cross to the thread as one copy each, not number by number.
  conn: Float64Array;
  cmd: Uint16Array;
  /** All payloads back to back, in shared memory; request i is bytes offsets[i]..offsets[i+1]. */
  payload: Uint8Array;
  offsets: Uint32Array;
  /** Per connection id: remote address, port, session entries (empty when the session is). */
  peers: Record<number, [string, number, [string, unknown][]]>;
}

/**
 * A side effect of a handler. The gateway applies a batch's effects in the order they
 * happened, before it answers any request of the batch (so a push precedes its response).
 */
export type Effect =
  | { k: 'push'; to: number; c: number; b: Uint8Array }
  | { k: 'bcast'; c: number; b: Uint8Array; except: number[] }
  | { k: 'set'; to: number; key: string; v: unknown }
  | { k: 'del'; to: number; key: string }
  | { k: 'clear'; to: number };

export interface PoolResult {
  /** Wire status per request (0 = OK). */
  st: Uint16Array;
  /** OK payloads back to back (offsets as in the batch); errors have zero length. */
  payload: Uint8Array;
  offsets: Uint32Array;
  /** Error bodies by request index; null when every request succeeded. */
  errors: Record<number, ErrorBody> | null;
  /** null when no handler had a side effect. */
  effects: Effect[] | null;
}
