import 'reflect-metadata';
import type { PayloadCodec, PayloadCodecName } from '../codec/payload-codecs.js';

/** Options of `@Command(id, options)`. */
export interface CommandOptions {
  /** How the payload is decoded for `handle` and the result encoded: `raw` (default), `json`, `msgpack`, or your own. */
  codec?: PayloadCodecName | PayloadCodec;
  /**
   * Answer TIMEOUT when an async handler has not finished after this many ms. Left out: the
   * server's `defaultTimeoutMs`; 0: no timeout. A synchronous handler cannot be interrupted.
   */
  timeoutMs?: number;
  /** Requests of this command on one connection run one after another and are answered in arrival order. */
  ordered?: boolean;
  /**
   * Whether the request may be run again when the thread (local-pool) or logic process
   * (remote) holding it died. Default true: at-least-once. false: answered with an error
   * instead, for commands that must not run twice.
   */
  retry?: boolean;
}

export interface CommandMetadata {
  readonly id: number;
  readonly options: Readonly<CommandOptions>;
}

// The only metadata key of the package. Decorators write it; the scanner reads it once at start.
const COMMAND_KEY = Symbol.for('diocp:command');

export function defineCommandMetadata(target: object, meta: CommandMetadata): void {
  Reflect.defineMetadata(COMMAND_KEY, meta, target);
}

/** The class's own @Command metadata (not inherited from a base class), if any. */
export function getCommandMetadata(target: object): CommandMetadata | undefined {
  return Reflect.getOwnMetadata(COMMAND_KEY, target) as CommandMetadata | undefined;
}
