import { Buffer } from 'node:buffer';
import { bufferView } from '../util/buffer-view.js';
import { protocolError, type ProtocolError } from '../errors.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  Flags,
  HEADER_SIZE,
  MAGIC_0,
  MAGIC_1,
  PROTOCOL_VERSION,
  RESERVED_FLAGS,
  SERVER_FLAGS,
} from '../protocol/constants.js';
import type { Frame } from './frame.js';

export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes. Checked from the header, before any payload is buffered. */
  maxFrameSize?: number;
  /**
   * Which side decodes: `server` rejects RESPONSE/ERROR/PUSH flags (clients must not send them),
   * `client` rejects ONEWAY, `any` checks neither.
   */
  side?: 'server' | 'client' | 'any';
}

/**
 * Incremental decoder for PROTOCOL.md v1. Feed it the chunks of a stream in order; it
 * reassembles split frames and splits sticky ones. Complete frames of a chunk that arrive
 * before a protocol error are still delivered in `out`; after an error the stream is dead.
 *
 * Payloads of frames that lie whole inside one chunk are zero-copy views of that chunk.
 */
export class FrameDecoder {
  readonly maxFrameSize: number;
  private readonly forbidden: number;
  private readonly sideName: string;
  /** Partial header bytes (always 16 long) and how many are filled. */
  private readonly header = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  /** Header fields of the frame whose payload is being collected, if any. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  private flags = 0;
  private command = 0;
  private status = 0;
  private requestId = 0;
  private failed: ProtocolError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    const side = options.side ?? 'server';
    this.forbidden = side === 'server' ? SERVER_FLAGS : side === 'client' ? Flags.ONEWAY : 0;
    this.sideName = side;
  }

  /** Bytes held for an incomplete frame (bounded by 16 + maxFrameSize). */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Decode `chunk`, appending complete frames to `out`. Throws a ProtocolError (after
   * appending the good frames that preceded the bad one) and keeps throwing it afterwards.
   */
  push(chunk: Buffer, out: Frame[]): void {
    if (this.failed) throw this.failed;
    let pos = 0;
    const end = chunk.length;
    try {
      // Finish a frame begun in an earlier chunk.
      if (this.headerFill > 0 || this.body !== null) {
        pos = this.continuePartial(chunk, out);
        if (pos < 0) return;
      }
      // Fast path: whole frames inside this chunk, parsed in place.
      while (end - pos >= HEADER_SIZE) {
        this.parseHeader(chunk, pos);
        const length = chunk.readUInt32BE(pos + 12);
        const start = pos + HEADER_SIZE;
        if (end - start >= length) {
          out.push({
            flags: this.flags,
            command: this.command,
            status: this.status,
            requestId: this.requestId,
            // A view built with the plain typed-array constructor (subarray's species lookup costs more).
            payload: bufferView(chunk.buffer, chunk.byteOffset + start, length),
          });
          pos = start + length;
        } else {
          this.body = Buffer.allocUnsafe(length);
          this.bodyFill = end - start;
          chunk.copy(this.body, 0, start, end);
          return;
        }
      }
      if (pos < end) {
        chunk.copy(this.header, 0, pos, end);
        this.headerFill = end - pos;
        checkPrefix(this.header, this.headerFill);
      }
    } catch (err) {
      this.failed = err as ProtocolError;
      this.body = null;
      throw err;
    }
  }

  /** Returns the position after the completed frame, or -1 when the chunk was consumed. */
  private continuePartial(chunk: Buffer, out: Frame[]): number {
    let pos = 0;
    if (this.body === null) {
      const need = HEADER_SIZE - this.headerFill;
      const take = Math.min(need, chunk.length);
      chunk.copy(this.header, this.headerFill, 0, take);
      this.headerFill += take;
      pos = take;
      if (this.headerFill < HEADER_SIZE) {
        checkPrefix(this.header, this.headerFill);
        return -1;
      }
      this.headerFill = 0;
      this.parseHeader(this.header, 0);
      this.body = Buffer.allocUnsafe(this.header.readUInt32BE(12));
      this.bodyFill = 0;
    }
    const body = this.body;
    const take = Math.min(body.length - this.bodyFill, chunk.length - pos);
    chunk.copy(body, this.bodyFill, pos, pos + take);
    this.bodyFill += take;
    pos += take;
    if (this.bodyFill < body.length) return -1;
    out.push({ flags: this.flags, command: this.command, status: this.status, requestId: this.requestId, payload: body });
    this.body = null;
    this.bodyFill = 0;
    return pos;
  }

  /** Validate a whole header at `at` and latch its fields. Throws ProtocolError. */
  private parseHeader(buf: Buffer, at: number): void {
    if (buf[at] !== MAGIC_0 || buf[at + 1] !== MAGIC_1) {
      throw protocolError('DIOCP_ERR_PROTOCOL_BAD_MAGIC', buf.readUInt16BE(at));
    }
    if (buf[at + 2] !== PROTOCOL_VERSION) {
      throw protocolError('DIOCP_ERR_PROTOCOL_BAD_VERSION', buf[at + 2]!);
    }
    const flags = buf[at + 3]!;
    const command = buf.readUInt16BE(at + 4);
    const requestId = buf.readUInt32BE(at + 8);
    const length = buf.readUInt32BE(at + 12);
    let err: ProtocolError | null = null;
    if ((flags & RESERVED_FLAGS) !== 0) err = protocolError('DIOCP_ERR_PROTOCOL_RESERVED_FLAG', flags);
    else if ((flags & this.forbidden) !== 0) err = protocolError('DIOCP_ERR_PROTOCOL_BAD_DIRECTION', flags, this.sideName);
    else if (length > this.maxFrameSize) err = protocolError('DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE', length, this.maxFrameSize);
    if (err) {
      // Magic and version were right, so the ids can be echoed back.
      err.command = command;
      err.requestId = requestId;
      throw err;
    }
    this.flags = flags;
    this.command = command;
    this.status = buf.readUInt16BE(at + 6);
    this.requestId = requestId;
  }
}

/** Reject a bad magic or version as soon as its bytes are here, not after 16 bytes arrive. */
function checkPrefix(buf: Buffer, filled: number): void {
  if (buf[0] !== MAGIC_0 || (filled > 1 && buf[1] !== MAGIC_1)) {
    throw protocolError('DIOCP_ERR_PROTOCOL_BAD_MAGIC', filled > 1 ? buf.readUInt16BE(0) : buf[0]! << 8);
  }
  if (filled > 2 && buf[2] !== PROTOCOL_VERSION) {
    throw protocolError('DIOCP_ERR_PROTOCOL_BAD_VERSION', buf[2]!);
  }
}
