import type { Logger } from 'pino';

/** Server-wide actions, available to every handler as `ctx.gateway`. */
export interface GatewayApi {
  /**
   * Send a PUSH frame to one connection. The payload is sent as is when it is a Buffer,
   * Uint8Array or string; otherwise it is encoded with the codec of `command` when that
   * command has a handler, else as JSON. Returns false when the connection is gone.
   */
  push(connectionId: number, command: number, payload?: unknown): boolean;
  /**
   * PUSH to every open connection, but those the filter leaves out: `{ except: id | ids }`
   * (works in every dispatch mode) or a function of each connection's context (inline
   * dispatch only: it needs the connections in this thread). The payload is encoded once.
   * Returns how many connections it was queued for (-1 from a handler thread: not known there).
   */
  broadcast(command: number, payload?: unknown, filter?: ((ctx: Context) => boolean) | { except?: number | readonly number[] }): number;
  /** Connections open now. */
  readonly connectionCount: number;
}

/**
 * What a handler knows about the connection a request came from. One object per connection,
 * shared by all its requests, so its session outlives any one request.
 */
export interface Context {
  /** Gateway connection id; carries a generation, so it never names a later connection. */
  readonly connectionId: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Per-connection storage (login state, subscriptions, ...); gone when the connection closes. */
  readonly session: Map<string, unknown>;
  /** PUSH to this connection. Same encoding rules as `gateway.push`. */
  push(command: number, payload?: unknown): boolean;
  readonly gateway: GatewayApi;
  readonly logger: Logger;
}
