// The worker protocol (gateway ROUTER ⇄ worker DEALER), byte for byte as docs/worker-protocol.md
// describes it. Pure functions: encode a message into ZeroMQ frames, decode frames or say why not.
import { Buffer } from 'node:buffer';
import { pack, unpack } from 'msgpackr';
import type { ErrorBody, Outcome } from '../outcome.js';
import { PeerTableBuilder, type Effect, type PeerTable } from '../pool-protocol.js';

/** Version of the worker protocol; a peer with another version is refused. */
export const WIRE_VERSION = 1;
/** First two bytes of every message's header frame: "DW". */
export const MAGIC0 = 0x44;
export const MAGIC1 = 0x57;

export const enum Msg {
  Ready = 0x01,
  Welcome = 0x02,
  Heartbeat = 0x03,
  Batch = 0x04,
  Result = 0x05,
  Disconnect = 0x06,
  Reset = 0x07,
  Refuse = 0x08,
}

/** Bytes per request in a BATCH index frame: f64 connection id, u32 request id, u32 length, u16 command, u16 reserved. */
export const BATCH_ENTRY = 20;
/** Bytes per answer in a RESULT index frame: u32 request id, u32 length, u16 status, u16 reserved. */
export const RESULT_ENTRY = 12;

const headers: Buffer[] = [];
/** The 4-byte header frame of a message type (shared, never written to). */
export function header(type: Msg): Buffer {
  return (headers[type] ??= Buffer.from([MAGIC0, MAGIC1, WIRE_VERSION, type]));
}

export interface ReadyBody {
  /** Most requests the worker holds at once (its credit). */
  capacity: number;
  pid: number;
  name: string;
  /** Handler threads, 0 when handlers run on the worker's main thread. */
  threads: number;
}

export interface WelcomeBody {
  heartbeatMs: number;
  liveness: number;
}

export interface RefuseBody {
  /** A DIOCP_ERR_REMOTE_* code. */
  code: string;
  message: string;
}

/** One connection of a BATCH on the wire: id, remote address, port, session entries. */
export type Peer = [number, string, number, [string, unknown][]];

/** What a BATCH carries, decoded. Payloads are views into the message's payload frame. */
export interface DecodedBatch {
  rid: Uint32Array;
  conn: Float64Array;
  cmd: Uint16Array;
  /** All payloads back to back; request i is bytes offsets[i]..offsets[i+1]. */
  payload: Uint8Array;
  offsets: Uint32Array;
  /** The batch's connections, as the thread runner takes them (PoolBatch.peers). */
  peers: PeerTable;
}

export interface DecodedResult {
  rid: Uint32Array;
  status: Uint16Array;
  /** Frame 2: OK payloads and msgpack error bodies back to back. */
  payload: Buffer;
  offsets: Uint32Array;
  effects: Effect[] | null;
}

/** A message that does not follow the protocol; `reason` says how. */
export class WireError extends Error {}

export type Decoded =
  | { type: Msg.Ready; body: ReadyBody }
  | { type: Msg.Welcome; body: WelcomeBody }
  | { type: Msg.Heartbeat }
  | { type: Msg.Batch; body: DecodedBatch }
  | { type: Msg.Result; body: DecodedResult }
  | { type: Msg.Disconnect }
  | { type: Msg.Reset }
  | { type: Msg.Refuse; body: RefuseBody };

/**
 * Check a message's header frame. Returns the type, or throws WireError; `version` is set on
 * the error when only the version is wrong (the peer then gets REFUSE, not silence).
 */
export function readHeader(frames: readonly Buffer[]): Msg {
  const h = frames[0];
  if (h === undefined || h.length !== 4 || h[0] !== MAGIC0 || h[1] !== MAGIC1) {
    throw new WireError(`not a diocp worker-protocol message (header ${h === undefined ? 'missing' : h.subarray(0, 8).toString('hex')})`);
  }
  if (h[2] !== WIRE_VERSION) throw Object.assign(new WireError(`worker protocol version ${h[2]}, this side speaks version ${WIRE_VERSION}`), { version: h[2] });
  const type = h[3]!;
  if (type < Msg.Ready || type > Msg.Refuse) throw new WireError(`unknown message type 0x${type.toString(16).padStart(2, '0')}`);
  return type as Msg;
}

/** Decode a whole message (header included). Throws WireError on anything malformed. */
export function decode(frames: readonly Buffer[]): Decoded {
  const type = readHeader(frames);
  switch (type) {
    case Msg.Heartbeat:
    case Msg.Disconnect:
    case Msg.Reset:
      expectFrames(frames, 1, type);
      return { type };
    case Msg.Ready: {
      expectFrames(frames, 2, type);
      const b = map(frames[1]!, 'READY');
      if (!isInt(b.capacity, 1, 0xffff_ffff)) throw new WireError(`READY capacity must be a whole number ≥ 1, got ${String(b.capacity)}`);
      return {
        type,
        body: {
          capacity: b.capacity as number,
          pid: isInt(b.pid, 0, 2 ** 32) ? (b.pid as number) : 0,
          name: typeof b.name === 'string' ? b.name.slice(0, 200) : '',
          threads: isInt(b.threads, 0, 1 << 16) ? (b.threads as number) : 0,
        },
      };
    }
    case Msg.Welcome: {
      expectFrames(frames, 2, type);
      const b = map(frames[1]!, 'WELCOME');
      if (!isInt(b.heartbeatMs, 1, 2 ** 31 - 1) || !isInt(b.liveness, 1, 1000)) throw new WireError('WELCOME needs heartbeatMs and liveness');
      return { type, body: { heartbeatMs: b.heartbeatMs as number, liveness: b.liveness as number } };
    }
    case Msg.Refuse: {
      expectFrames(frames, 2, type);
      const b = map(frames[1]!, 'REFUSE');
      return { type, body: { code: String(b.code), message: String(b.message) } };
    }
    case Msg.Batch:
      expectFrames(frames, 4, type);
      return { type, body: decodeBatch(frames[1]!, frames[2]!, frames[3]!) };
    case Msg.Result:
      expectFrames(frames, 4, type);
      return { type, body: decodeResult(frames[1]!, frames[2]!, frames[3]!) };
  }
}

function expectFrames(frames: readonly Buffer[], n: number, type: Msg): void {
  if (frames.length !== n) throw new WireError(`message type 0x0${type.toString(16)} has ${frames.length} frames, expected ${n}`);
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function map(frame: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = unpack(frame);
  } catch (err) {
    throw new WireError(`${what} body is not MessagePack: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WireError(`${what} body must be a MessagePack map`);
  return v as Record<string, unknown>;
}

// ---- encoders ----

export function encodeReady(body: ReadyBody): Buffer[] {
  return [header(Msg.Ready), pack(body)];
}

export function encodeWelcome(body: WelcomeBody): Buffer[] {
  return [header(Msg.Welcome), pack(body)];
}

export function encodeRefuse(body: RefuseBody): Buffer[] {
  return [header(Msg.Refuse), pack(body)];
}

export function encodeSignal(type: Msg.Heartbeat | Msg.Disconnect | Msg.Reset): Buffer[] {
  return [header(type)];
}

/** One request of a BATCH, as the gateway holds it: its request id and the client's request. */
export interface BatchItem {
  rid: number;
  req: { readonly connectionId: number; readonly command: number; readonly payload: Buffer };
}

/**
 * BATCH: header, index (BATCH_ENTRY bytes per request), payloads back to back, peers (msgpack
 * array of [connectionId, address, port, session entries]).
 */
export function encodeBatch(items: readonly BatchItem[], peers: readonly Peer[]): Buffer[] {
  const n = items.length;
  const index = Buffer.allocUnsafe(n * BATCH_ENTRY);
  let total = 0;
  for (let i = 0; i < n; i++) total += items[i]!.req.payload.length;
  const payload = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const it = items[i]!;
    const req = it.req;
    const o = i * BATCH_ENTRY;
    index.writeDoubleLE(req.connectionId, o);
    index.writeUInt32LE(it.rid, o + 8);
    index.writeUInt32LE(req.payload.length, o + 12);
    index.writeUInt16LE(req.command, o + 16);
    index.writeUInt16LE(0, o + 18);
    payload.set(req.payload, at);
    at += req.payload.length;
  }
  return [header(Msg.Batch), index, payload, pack(peers)];
}

function decodeBatch(index: Buffer, payload: Buffer, peersFrame: Buffer): DecodedBatch {
  if (index.length % BATCH_ENTRY !== 0 || index.length === 0) throw new WireError(`BATCH index is ${index.length} bytes, not a positive multiple of ${BATCH_ENTRY}`);
  const n = index.length / BATCH_ENTRY;
  const rid = new Uint32Array(n);
  const conn = new Float64Array(n);
  const cmd = new Uint16Array(n);
  const offsets = new Uint32Array(n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const o = i * BATCH_ENTRY;
    conn[i] = index.readDoubleLE(o);
    rid[i] = index.readUInt32LE(o + 8);
    offsets[i] = at;
    at += index.readUInt32LE(o + 12);
    cmd[i] = index.readUInt16LE(o + 16);
  }
  offsets[n] = at;
  if (at !== payload.length) throw new WireError(`BATCH payload lengths add up to ${at}, the payload frame has ${payload.length} bytes`);
  let list: unknown;
  try {
    list = peersFrame.length ? unpack(peersFrame) : [];
  } catch (err) {
    throw new WireError(`BATCH peers frame is not MessagePack: ${(err as Error).message}`);
  }
  if (!Array.isArray(list)) throw new WireError('BATCH peers frame must be a MessagePack array');
  const peers = new PeerTableBuilder();
  for (const p of list as unknown[]) {
    if (!Array.isArray(p) || typeof p[0] !== 'number' || typeof p[1] !== 'string' || !Number.isInteger(p[2]) || p[2] < 0 || p[2] > 0xffff || !Array.isArray(p[3])) {
      throw new WireError('a BATCH peer must be [connectionId, address, port (0-65535), [[key, value], ...]]');
    }
    peers.add(p[0], p[1], p[2], p[3] as [string, unknown][]);
  }
  return { rid, conn, cmd, payload, offsets, peers: peers.build() };
}

/** What a worker answers for a batch, in request order (the pool runner's PoolResult). */
export interface ResultParts {
  st: Uint16Array;
  payload: Uint8Array;
  offsets: Uint32Array;
  errors: Record<number, ErrorBody> | null;
  effects: Effect[] | null;
}

/**
 * RESULT: header, index (RESULT_ENTRY bytes per answer), answer bytes back to back (an OK
 * payload, or the msgpack ErrorBody of an error), effects (msgpack array, or empty).
 */
export function encodeResult(rid: ArrayLike<number>, r: ResultParts): Buffer[] {
  const n = r.st.length;
  const index = Buffer.allocUnsafe(n * RESULT_ENTRY);
  const effects = r.effects ? pack(r.effects) : Buffer.alloc(0);
  if (r.errors === null) {
    // All OK: the payloads are already back to back in answer order.
    for (let i = 0; i < n; i++) {
      const o = i * RESULT_ENTRY;
      index.writeUInt32LE(rid[i]!, o);
      index.writeUInt32LE(r.offsets[i + 1]! - r.offsets[i]!, o + 4);
      index.writeUInt32LE(0, o + 8);
    }
    return [header(Msg.Result), index, Buffer.from(r.payload.subarray(r.offsets[0]!, r.offsets[n]!)), effects];
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = i * RESULT_ENTRY;
    const st = r.st[i]!;
    let bytes: Uint8Array;
    if (st === 0) bytes = r.payload.subarray(r.offsets[i]!, r.offsets[i + 1]!);
    else bytes = packError(r.errors?.[i] ?? { code: st, message: 'failed' });
    parts.push(bytes);
    total += bytes.length;
    index.writeUInt32LE(rid[i]!, o);
    index.writeUInt32LE(bytes.length, o + 4);
    index.writeUInt16LE(st, o + 8);
    index.writeUInt16LE(0, o + 10);
  }
  const payload = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    payload.set(p, at);
    at += p.length;
  }
  return [header(Msg.Result), index, payload, effects];
}

/** An error body as msgpack; `data` that MessagePack cannot encode (a function, say) is left out. */
function packError(e: ErrorBody): Buffer {
  try {
    return pack(e);
  } catch {
    const { data: _d, ...rest } = e;
    return pack(rest);
  }
}

/** RESULT from outcomes in hand: answer i is for request id `rid[i]`. */
export function encodeOutcomes(rid: ArrayLike<number>, outcomes: readonly Outcome[], effects: Effect[] | null): Buffer[] {
  const n = outcomes.length;
  const index = Buffer.allocUnsafe(n * RESULT_ENTRY);
  const parts: Uint8Array[] = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = outcomes[i]!;
    const bytes = o.status === 0 ? (o as { payload: Buffer }).payload : packError((o as { error: ErrorBody }).error);
    parts[i] = bytes;
    total += bytes.length;
    const at = i * RESULT_ENTRY;
    index.writeUInt32LE(rid[i]!, at);
    index.writeUInt32LE(bytes.length, at + 4);
    index.writeUInt16LE(o.status, at + 8);
    index.writeUInt16LE(0, at + 10);
  }
  const answers = n === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.allocUnsafe(total);
  if (n > 1) {
    let at = 0;
    for (const p of parts) {
      answers.set(p, at);
      at += p.length;
    }
  }
  return [header(Msg.Result), index, answers, effects ? pack(effects) : Buffer.alloc(0)];
}

function decodeResult(index: Buffer, payload: Buffer, effectsFrame: Buffer): DecodedResult {
  if (index.length % RESULT_ENTRY !== 0 || index.length === 0) throw new WireError(`RESULT index is ${index.length} bytes, not a positive multiple of ${RESULT_ENTRY}`);
  const n = index.length / RESULT_ENTRY;
  const rid = new Uint32Array(n);
  const status = new Uint16Array(n);
  const offsets = new Uint32Array(n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const o = i * RESULT_ENTRY;
    rid[i] = index.readUInt32LE(o);
    offsets[i] = at;
    at += index.readUInt32LE(o + 4);
    status[i] = index.readUInt16LE(o + 8);
  }
  offsets[n] = at;
  if (at !== payload.length) throw new WireError(`RESULT answer lengths add up to ${at}, the answer frame has ${payload.length} bytes`);
  let effects: Effect[] | null = null;
  if (effectsFrame.length) {
    let v: unknown;
    try {
      v = unpack(effectsFrame);
    } catch (err) {
      throw new WireError(`RESULT effects frame is not MessagePack: ${(err as Error).message}`);
    }
    if (!Array.isArray(v)) throw new WireError('RESULT effects frame must be a MessagePack array');
    effects = v.map(checkEffect);
  }
  return { rid, status, payload, offsets, effects };
}

function checkEffect(e: unknown): Effect {
  const o = e as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') throw new WireError('an effect must be a map');
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  switch (o.k) {
    case 'push':
      if (num(o.to) && num(o.c) && o.b instanceof Uint8Array) return o as unknown as Effect;
      break;
    case 'bcast':
      if (num(o.c) && o.b instanceof Uint8Array && Array.isArray(o.except) && o.except.every(num)) return o as unknown as Effect;
      break;
    case 'set':
      if (num(o.to) && typeof o.key === 'string') return o as unknown as Effect;
      break;
    case 'del':
      if (num(o.to) && typeof o.key === 'string') return o as unknown as Effect;
      break;
    case 'clear':
      if (num(o.to)) return o as unknown as Effect;
      break;
  }
  throw new WireError(`malformed effect ${JSON.stringify(o.k)}`);
}

/** The error body of answer i of a decoded RESULT with a non-zero status. */
export function errorBodyAt(r: DecodedResult, i: number): ErrorBody {
  const st = r.status[i]!;
  try {
    const v = unpack(r.payload.subarray(r.offsets[i]!, r.offsets[i + 1]!)) as Partial<ErrorBody> | null;
    if (v !== null && typeof v === 'object' && typeof v.message === 'string') return { ...v, code: st, message: v.message };
  } catch {
    // fall through: a worker that sent junk as an error body still gets its status through
  }
  return { code: st, message: 'the worker answered an error without a readable body', error: 'DIOCP_ERR_REMOTE_BAD_MESSAGE' };
}
