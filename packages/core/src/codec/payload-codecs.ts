import { Buffer } from 'node:buffer';
import { C1, Packr } from 'msgpackr';

/**
 * How a command's payload bytes become the `request` a handler receives, and how its
 * return value becomes response bytes. Chosen per command with `@Command(id, { codec })`.
 */
export interface PayloadCodec {
  readonly name: string;
  /** Throws on malformed input; the gateway answers BAD_REQUEST with the message. */
  decode(payload: Buffer): unknown;
  encode(value: unknown): Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Bytes in, bytes out: the handler receives a Buffer and returns a Buffer, Uint8Array, string or nothing. */
export const rawCodec: PayloadCodec = {
  name: 'raw',
  decode: (payload) => payload,
  encode(value) {
    if (value === undefined || value === null) return EMPTY;
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    throw new TypeError(`a raw command must return a Buffer, Uint8Array or string, not ${describe(value)}`);
  },
};

/** UTF-8 JSON. An empty payload decodes to `undefined`; `undefined` encodes to an empty payload. */
export const jsonCodec: PayloadCodec = {
  name: 'json',
  decode(payload) {
    if (payload.length === 0) return undefined;
    return JSON.parse(payload.toString('utf8'));
  },
  encode(value) {
    if (value === undefined) return EMPTY;
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`${describe(value)} cannot be represented as JSON`);
    return Buffer.from(text, 'utf8');
  },
};

// One Packr, no shared structures: every message is self-describing so any client can read it.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** MessagePack (msgpackr): compact and fast for objects. Empty payload ⇄ `undefined`. */
export const msgpackCodec: PayloadCodec = {
  name: 'msgpack',
  decode(payload) {
    if (payload.length === 0) return undefined;
    const value: unknown = packr.unpack(payload);
    // 0xc1 is "never used" in MessagePack; msgpackr returns a marker for it instead of failing.
    if (value === C1) throw new TypeError('0xc1 is not a valid MessagePack value');
    return value;
  },
  encode(value) {
    if (value === undefined) return EMPTY;
    return packr.pack(value);
  },
};

export const payloadCodecs = { raw: rawCodec, json: jsonCodec, msgpack: msgpackCodec } as const;
export type PayloadCodecName = keyof typeof payloadCodecs;

/**
 * A codec by name or as given (`raw` when undefined). Returns a string saying what is wrong
 * instead of throwing, so each caller raises its own coded error.
 */
export function findPayloadCodec(codec: PayloadCodecName | PayloadCodec | undefined): PayloadCodec | string {
  if (codec === undefined) return rawCodec;
  if (typeof codec === 'string') {
    return Object.hasOwn(payloadCodecs, codec) ? payloadCodecs[codec] : `"${codec}" is unknown (use raw, json, msgpack or a { name, encode, decode } object)`;
  }
  if (typeof codec === 'object' && codec !== null && typeof codec.encode === 'function' && typeof codec.decode === 'function') {
    return codec;
  }
  return 'must be a codec name or an object with encode and decode';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'Object'})` : `a ${typeof value}`;
}
