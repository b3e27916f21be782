import { Buffer } from 'node:buffer';
import { rawCodec } from '../codec/payload-codecs.js';
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
  const r = runHandlerFast(route, payload, ctx, debug);
  return r instanceof Uint8Array ? ok(r as Buffer) : r;
}

/**
 * runHandler for a caller that answers at once (the gateway's inline fast path): a synchronous
 * success is the encoded response itself (a `Buffer`, no outcome object); an error is an
 * Outcome, an asynchronous handler a Promise of one. Same logic, the one copy of it.
 */
export function runHandlerFast(route: Route, payload: Buffer, ctx: Context, debug: boolean): Buffer | Outcome | Promise<Outcome> {
  const raw = route.codec === rawCodec;
  let request: unknown = payload;
  if (!raw) {
    try {
      request = route.codec.decode(payload);
    } catch (err) {
      return frameworkError(diocpError('DIOCP_ERR_CODEC_DECODE', route.command, route.codec.name, (err as Error).message));
    }
  }
  let result: unknown;
  try {
    result = route.handler!.handle(request, ctx);
  } catch (err) {
    return errorOutcome(err, debug);
  }
  // A raw command's Buffer is its own encoding (what rawCodec.encode returns): no call, and no
  // `then` lookup through Buffer.prototype's chain, on the hot path of byte-level handlers.
  if (raw && result instanceof Buffer) return result;
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    return settle(route, result as PromiseLike<unknown>, debug);
  }
  return encodeFast(route, result);
}

/**
 * An asynchronous handler's answer. A function of its own: closures in runHandlerFast would
 * make V8 allocate a context for `route` and `debug` on every call, sync handlers included.
 */
function settle(route: Route, result: PromiseLike<unknown>, debug: boolean): Promise<Outcome> {
  return Promise.resolve(result).then(
    (value) => encode(route, value),
    (err: unknown) => errorOutcome(err, debug),
  );
}

function encodeFast(route: Route, value: unknown): Buffer | Outcome {
  try {
    return route.codec.encode(value);
  } catch (err) {
    return frameworkError(diocpError('DIOCP_ERR_CODEC_ENCODE', route.command, route.codec.name, (err as Error).message));
  }
}

function encode(route: Route, value: unknown): Outcome {
  const r = encodeFast(route, value);
  return r instanceof Uint8Array ? ok(r as Buffer) : r;
}
