import type { Logger } from 'pino';
import type { Context, GatewayApi } from '../gateway/context.js';
import type { Route } from '../router/route.js';
import type { Outcome } from './outcome.js';

export type DispatchMode = 'inline' | 'local-pool' | 'remote';

/** One request on its way to a handler. The gateway creates it; the dispatcher completes it. */
export interface DispatchRequest {
  /** Gateway connection id (with generation). */
  readonly connectionId: number;
  readonly command: number;
  readonly requestId: number;
  /** ONEWAY: run it, answer nothing. */
  readonly oneway: boolean;
  readonly payload: Buffer;
  readonly route: Route;
  /** True once the gateway answered it (or gave up on it: timeout, closed connection). */
  readonly done: boolean;
  /** Free for the dispatcher that holds the request (its batch, say); the gateway ignores it. */
  tag: unknown;
}

/** What a dispatcher may call back into: the gateway. */
export interface DispatcherHost {
  /**
   * Report the outcome of a request, once. Late outcomes (after a timeout, or for a
   * connection that closed) are dropped by the host, so a dispatcher need not check.
   */
  complete(request: DispatchRequest, outcome: Outcome): void;
  /** Answer OK with bytes `start`..`end` of `bytes`: `complete` without allocating (batch results). */
  completeBytes(request: DispatchRequest, bytes: Buffer, start: number, end: number): void;
  /** The live context of a connection, or undefined once it closed. */
  context(connectionId: number): Context | undefined;
  /** push / broadcast, for effects that handlers produced elsewhere. */
  readonly gateway: GatewayApi;
  readonly logger: Logger;
  readonly debug: boolean;
}

/**
 * Runs handlers somewhere: on the gateway's thread (inline), in a worker-thread pool
 * (local-pool) or in logic processes (remote). All modes pass test/dispatch/conformance.ts.
 */
export interface Dispatcher {
  readonly mode: DispatchMode;
  start(host: DispatcherHost): Promise<void>;
  /** Requests of one read, in arrival order. Must not throw. */
  dispatch(batch: readonly DispatchRequest[]): void;
  /** The gateway answered TIMEOUT for `request` (a chance to replace a stuck thread). */
  timedOut?(request: DispatchRequest): void;
  /** Stop taking work; resolves when what was given has been completed or abandoned. */
  stop(): Promise<void>;
}
