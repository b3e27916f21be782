import { Buffer } from 'node:buffer';
import { jsonCodec } from '../codec/payload-codecs.js';
import { diocpError } from '../errors.js';
import type { Router } from '../router/router.js';

/**
 * The bytes of a PUSH payload: sent as is for a Buffer, Uint8Array or string; otherwise
 * encoded with the codec of `command` when it has a handler, else as JSON. Shared by the
 * gateway and by handler threads, so a push encodes the same wherever the handler runs.
 */
export function encodePushPayload(router: Router, command: number, payload: unknown, maxFrameSize: number): Uint8Array {
  if (!Number.isInteger(command) || command < 1 || command > 0xffff) {
    throw diocpError('DIOCP_ERR_GATEWAY_BAD_PUSH', `the command must be an integer in 1..65535, got ${command}`);
  }
  let bytes: Uint8Array;
  if (payload instanceof Uint8Array) bytes = payload;
  else if (typeof payload === 'string') bytes = Buffer.from(payload, 'utf8');
  else {
    const codec = router.get(command)?.codec ?? jsonCodec;
    try {
      bytes = codec.encode(payload);
    } catch (err) {
      throw diocpError('DIOCP_ERR_GATEWAY_BAD_PUSH', `the payload cannot be encoded as ${codec.name}: ${(err as Error).message}`);
    }
  }
  if (bytes.length > maxFrameSize) {
    throw diocpError('DIOCP_ERR_GATEWAY_BAD_PUSH', `${bytes.length} bytes is over maxFrameSize ${maxFrameSize}`);
  }
  return bytes;
}

/** Which connections a broadcast skips: a function (inline dispatch only) or `{ except }`. */
export type BroadcastFilter<C> = ((ctx: C) => boolean) | { except?: number | readonly number[] };

/** The `except` ids of an object filter, as a set (empty for none). */
export function exceptIds(filter: { except?: number | readonly number[] } | undefined): ReadonlySet<number> {
  const e = filter?.except;
  if (e === undefined) return EMPTY;
  return new Set(typeof e === 'number' ? [e] : e);
}
const EMPTY: ReadonlySet<number> = new Set();
