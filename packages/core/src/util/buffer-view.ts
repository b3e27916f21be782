import { Buffer } from 'node:buffer';

/**
 * Views of memory as real Buffers (Buffer.prototype is in their chain: `Buffer.isBuffer`,
 * `instanceof Buffer` and every Buffer method work), built with the plain typed-array
 * constructor: `Buffer.from(arrayBuffer, offset, length)` validates its arguments and goes
 * through more calls, which shows at one view per request.
 */
class BufferView extends Uint8Array {}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);

/** A Buffer over `length` bytes of `memory` from `offset` (no copy). */
export function bufferView(memory: ArrayBufferLike, offset: number, length: number): Buffer {
  return new BufferView(memory as ArrayBuffer, offset, length) as unknown as Buffer;
}
