import { diocpError } from '../errors.js';
import type { Context } from '../gateway/context.js';
import type { Route } from '../router/route.js';
import { errorOutcome, frameworkError, ok, type Outcome } from './outcome.js';

/**
 * Run one request against its route: decode the payload with the command's codec, call
 * `handle`, encode the result. Never throws. Returns synchronously when the handler does,
 * so a trivial handler costs no promise. Used by every dispatch mode, wherever the handler runs.
 */
export function runHandler(route: Route, payload: Buffer, ctx: Context, debug: boolean): Outcome | Promise<Outcome> {
  let request: unknown;
  try {
    request = route.codec.decode(payload);
  } catch (err) {
    return frameworkError(diocpError('DIOCP_ERR_CODEC_DECODE', route.command, route.codec.name, (err as Error).message));
  }
  let result: unknown;
  try {
    result = route.handler!.handle(request, ctx);
  } catch (err) {
    return errorOutcome(err, debug);
  }
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    return Promise.resolve(result as PromiseLike<unknown>).then(
      (value) => encode(route, value),
      (err: unknown) => errorOutcome(err, debug),
    );
  }
  return encode(route, result);
}

function encode(route: Route, value: unknown): Outcome {
  try {
    return ok(route.codec.encode(value));
  } catch (err) {
    return frameworkError(diocpError('DIOCP_ERR_CODEC_ENCODE', route.command, route.codec.name, (err as Error).message));
  }
}
