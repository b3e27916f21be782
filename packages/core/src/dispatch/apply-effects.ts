import type { DispatcherHost } from './dispatcher.js';
import type { Effect } from './pool-protocol.js';

/**
 * Apply, in order, the side effects handlers produced away from the gateway (a handler thread
 * or a worker process): push, broadcast, session changes. An effect that fails is logged and
 * skipped; the rest still apply. Returns how many pushes were dropped because their connection
 * had closed.
 */
export function applyEffects(host: DispatcherHost, effects: readonly Effect[], from: string): number {
  const gw = host.gateway;
  let dropped = 0;
  for (const e of effects) {
    try {
      if (e.k === 'push') {
        if (!gw.push(e.to, e.c, e.b)) dropped++;
      } else if (e.k === 'bcast') gw.broadcast(e.c, e.b, { except: e.except });
      else {
        const session = host.context(e.to)?.session;
        if (session === undefined) continue;
        if (e.k === 'set') session.set(e.key, e.v);
        else if (e.k === 'del') session.delete(e.key);
        else session.clear();
      }
    } catch (err) {
      host.logger.warn({ err: (err as Error).message }, `a handler effect from ${from} could not be applied`);
    }
  }
  return dropped;
}
