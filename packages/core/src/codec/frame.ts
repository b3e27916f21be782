import { Buffer } from 'node:buffer';
import { HEADER_SIZE, MAGIC_0, MAGIC_1, PROTOCOL_VERSION } from '../protocol/constants.js';

/**
 * One decoded frame. `payload` may be a view into the chunk it was read from; the memory is
 * never reused, so it stays valid as long as it is referenced.
 */
export interface Frame {
  flags: number;
  command: number;
  status: number;
  requestId: number;
  payload: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Write a 16-byte header at `offset` of `buf`. */
export function writeHeader(
  buf: Buffer,
  offset: number,
  flags: number,
  command: number,
  status: number,
  requestId: number,
  length: number,
): void {
  buf[offset] = MAGIC_0;
  buf[offset + 1] = MAGIC_1;
  buf[offset + 2] = PROTOCOL_VERSION;
  buf[offset + 3] = flags;
  buf.writeUInt16BE(command, offset + 4);
  buf.writeUInt16BE(status, offset + 6);
  buf.writeUInt32BE(requestId >>> 0, offset + 8);
  buf.writeUInt32BE(length, offset + 12);
}

/** Encode one whole frame into a new buffer. */
export function encodeFrame(
  flags: number,
  command: number,
  status: number,
  requestId: number,
  payload: Uint8Array = EMPTY,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, flags, command, status, requestId, payload.length);
  out.set(payload, HEADER_SIZE);
  return out;
}
