import type { PayloadCodec } from '../codec/payload-codecs.js';
import type { CommandHandler } from '../decorators/command.js';

/** One entry of the command table: everything needed to run a command, resolved once at start. */
export interface Route {
  readonly command: number;
  /** Name of the handler class, for logs and errors. */
  readonly name: string;
  readonly codec: PayloadCodec;
  /** 0 = no timeout. */
  readonly timeoutMs: number;
  readonly ordered: boolean;
  /** false: never run twice after a thread or logic process died while holding the request. */
  readonly retry: boolean;
  /** The instance that handles it, where handlers run in this thread (inline dispatch). */
  readonly handler: CommandHandler | undefined;
}
