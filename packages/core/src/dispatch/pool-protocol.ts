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
  /** The batch's connections: remote address, port, session entries. */
  peers: PeerTable;
}

/** What a handler's context needs of its connection: remote address, port, session entries. */
export type PeerInfo = [address: string, port: number, session: [string, unknown][]];

/**
 * The distinct connections of a batch, as typed arrays and a short list of distinct addresses,
 * so that posting a batch to a thread copies a few arrays instead of cloning one small array
 * per connection (that clone was the largest part of a post: ~16 of ~24 µs for 100 connections).
 */
export interface PeerTable {
  /** Connection ids. */
  ids: Float64Array;
  ports: Uint16Array;
  /** Per connection, its remote address as an index into `addrs`. */
  addr: Uint16Array;
  addrs: string[];
  /** Sessions that are not empty: [index in `ids`, entries]. Usually none. */
  sessions: [number, [string, unknown][]][];
}

/** Builds a PeerTable, one connection at a time (each id once). */
export class PeerTableBuilder {
  private readonly seen = new Set<number>();
  private readonly ids: number[] = [];
  private readonly ports: number[] = [];
  private readonly addr: number[] = [];
  private readonly addrs: string[] = [];
  private readonly addrIndex = new Map<string, number>();
  private readonly sessions: [number, [string, unknown][]][] = [];

  has(id: number): boolean {
    return this.seen.has(id);
  }

  add(id: number, address: string, port: number, session: [string, unknown][]): void {
    if (this.seen.has(id)) return;
    this.seen.add(id);
    let a = this.addrIndex.get(address);
    if (a === undefined) {
      a = this.addrs.length;
      this.addrs.push(address);
      this.addrIndex.set(address, a);
    }
    if (session.length > 0) this.sessions.push([this.ids.length, session]);
    this.ids.push(id);
    this.ports.push(port);
    this.addr.push(a);
  }

  build(): PeerTable {
    return { ids: Float64Array.from(this.ids), ports: Uint16Array.from(this.ports), addr: Uint16Array.from(this.addr), addrs: this.addrs, sessions: this.sessions };
  }
}

/** Look connections of a table up by id (the index is built on the first call). */
export function peerLookup(t: PeerTable): (id: number) => PeerInfo | undefined {
  let index: Map<number, number> | null = null;
  let sessions: Map<number, [string, unknown][]> | null = null;
  return (id) => {
    if (index === null) {
      index = new Map();
      for (let i = 0; i < t.ids.length; i++) index.set(t.ids[i]!, i);
      sessions = new Map(t.sessions);
    }
    const i = index.get(id);
    if (i === undefined) return undefined;
    return [t.addrs[t.addr[i]!] ?? '', t.ports[i]!, sessions!.get(i) ?? []];
  };
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
