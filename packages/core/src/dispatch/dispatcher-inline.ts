import { diocpError } from '../errors.js';
import type { Dispatcher, DispatcherHost, DispatchRequest } from './dispatcher.js';
import { frameworkError } from './outcome.js';
import { runHandler } from './run-handler.js';

/** Runs each handler on the gateway's own thread: no hop, the lowest latency for light work. */
export class InlineDispatcher implements Dispatcher {
  readonly mode = 'inline';
  private host: DispatcherHost | null = null;

  async start(host: DispatcherHost): Promise<void> {
    this.host = host;
  }

  dispatch(batch: readonly DispatchRequest[]): void {
    const host = this.host!;
    for (let i = 0; i < batch.length; i++) {
      const req = batch[i]!;
      const ctx = host.context(req.connectionId);
      if (ctx === undefined) {
        // The connection closed while the request waited (an ordered queue): nobody to answer.
        host.complete(req, frameworkError(diocpError('DIOCP_ERR_DISPATCH_UNAVAILABLE', 'the connection closed before dispatch')));
        continue;
      }
      const outcome = runHandler(req.route, req.payload, ctx, host.debug);
      if (outcome instanceof Promise) outcome.then((o) => host.complete(req, o));
      else host.complete(req, outcome);
    }
  }

  async stop(): Promise<void> {
    this.host = null;
  }
}
