/**
 * The native transport: the JavaScript half of the addon. Reads the IO thread's event
 * records in batches (one call per batch, many connections) and writes one op stream per tick
 * back (one submit per tick, many frames). See docs/transports.md.
 */
import { Buffer } from 'node:buffer';
import { loadAddon } from './loader.js';
import { NativeTransportError } from './errors.js';
import type { NativeAddon, NativeConstants, NativeServer } from './native.js';
import type {
  CloseReason,
  Frame,
  NativeTransportHooks,
  NativeTransportOptions,
  ProtocolErrorLike,
  TransportEvents,
  TransportStats,
} from './types.js';

/** Connection ids are gen × SLOT_SPACE + slot: a slot is reused, an id never is. */
const SLOT_SPACE = 2 ** 24;
const CLOSE_REASONS: readonly CloseReason[] = ['peer', 'idle', 'slow', 'closed', 'error'];
const EMPTY = Buffer.alloc(0);
const OUT_INITIAL = 64 * 1024;
/** Past this, the op buffer is given back after a submit instead of kept for the next tick. */
const OUT_KEEP = 4 * 1024 * 1024;

// Record and op types, as plain constants for the hot paths (an object read per record costs
// more); checked against the addon's own `constants` when a transport is created.
const REC_BLOCK = 1;
const REC_FRAME = 2;
const REC_FRAME_OWNED = 3;
const REC_OPEN = 4;
const REC_PROTO_ERROR = 5;
const REC_CLOSE = 6;
const REC_DONE = 7;
const OP_SEND = 1;
/** A send op grows by one frame at a time up to this many bytes (the op length is a u32). */
const OP_MAX_BYTES = 0x40000000;
const RECORD_WORDS = 8;
/** Little-endian host: a frame header is written as four u32 words (byte-swapped) instead of 16 bytes. */
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Header word 0 without the flags byte: magic 0xD1 0x0C, version 1, as a little-endian u32. */
const HEADER_W0 = 0xd1 | (0x0c << 8) | (1 << 16);

/**
 * The payload views handed to JavaScript: real Buffers (Buffer.prototype is in their chain, so
 * `Buffer.isBuffer`, `instanceof Buffer` and every Buffer method work) built with the plain
 * typed-array constructor: about 25 ns a frame instead of about 80 ns for `buf.subarray()`
 * (which goes through the species lookup) — the largest JavaScript cost per frame here.
 */
class PayloadBuffer extends Uint8Array {}
Object.setPrototypeOf(PayloadBuffer.prototype, Buffer.prototype);

/** Per-slot state on the JavaScript side. */
const OPEN = 0;
const CLOSING = 1; // close() was called: nothing more is sent or delivered
const FAILED = 2; // protocol error: the native layer answers and closes

class NativeProtocolError extends Error implements ProtocolErrorLike {
  readonly status = 1;
  constructor(
    readonly code: string,
    message: string,
    public command: number,
    public requestId: number,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class NativeTransport<E extends ProtocolErrorLike = ProtocolErrorLike> {
  readonly name = 'native';
  /** The IO thread sends the error frame of a bad frame itself (the gateway's copy is refused). */
  readonly answersProtocolErrors = true;
  private readonly addon: NativeAddon;
  private readonly k: NativeConstants;
  private server: NativeServer | null = null;
  private events: TransportEvents<E> | null = null;
  private records: Uint32Array = new Uint32Array(0);
  private mask = 0;
  /** Open generation per slot (0: no connection) and the slot's state. */
  private gens: number[] = [];
  private state: number[] = [];
  /** Bytes queued per slot this tick, to apply maxSendQueueBytes before copying more. */
  private tickBytes: number[] = [];
  private touched: number[] = [];
  private current: ArrayBuffer = new ArrayBuffer(0);
  private out: Buffer = Buffer.allocUnsafe(OUT_INITIAL);
  private outWords = new Uint32Array(this.out.buffer, this.out.byteOffset, OUT_INITIAL >>> 2);
  private outLen = 0;
  /**
   * The last op, while it is a send that the next frame for the same connection may extend
   * (its header's word index, else -1), its connection, and where its bytes end (unpadded).
   * A connection's answers of one read then travel as one op: one header, one parse, one
   * queue append on the IO thread instead of one per frame.
   */
  private openOp = -1;
  private openSlot = -1;
  private openGen = -1;
  private openEnd = 0;
  private inBatch = false;
  private flushScheduled = false;
  private nextToken = 1;
  private readonly waiting = new Map<number, () => void>();
  private shutdownPromise: Promise<void> | null = null;
  private stopped = false;
  private counters: BigUint64Array | null = null;
  private last: TransportStats | null = null;

  constructor(
    private readonly options: NativeTransportOptions,
    private readonly hooks: NativeTransportHooks<E> = {},
  ) {
    this.addon = loadAddon();
    this.k = this.addon.constants;
    const k = this.k;
    const expected = [k.REC_BLOCK, k.REC_FRAME, k.REC_FRAME_OWNED, k.REC_OPEN, k.REC_PROTO_ERROR, k.REC_CLOSE, k.REC_DONE, k.OP_SEND, k.RECORD_WORDS];
    const mine = [REC_BLOCK, REC_FRAME, REC_FRAME_OWNED, REC_OPEN, REC_PROTO_ERROR, REC_CLOSE, REC_DONE, OP_SEND, RECORD_WORDS];
    if (expected.some((v, i) => v !== mine[i])) {
      throw new NativeTransportError('DIOCP_ERR_NATIVE_UNAVAILABLE', 'the native transport is not available: the addon speaks another record format than this wrapper (rebuild it)');
    }
  }

  listen(events: TransportEvents<E>): Promise<{ host: string; port: number }> {
    if (this.server !== null || this.stopped) return Promise.reject(new NativeTransportError('DIOCP_ERR_NATIVE_STATE', 'listen() may be called once'));
    this.events = events;
    const o = this.options;
    try {
      this.server = new this.addon.NativeServer(
        { host: o.host, port: o.port, maxFrameSize: o.maxFrameSize, maxConnections: o.maxConnections, idleTimeoutMs: o.idleTimeoutMs, maxSendQueueBytes: o.maxSendQueueBytes, ringRecords: o.ringRecords },
        this.onBatch,
      );
    } catch (err) {
      const e = err as Error & { code?: string; errno?: number; syscall?: string; errnoName?: string };
      const why = e.errnoName ?? e.message;
      const wrapped =
        this.hooks.listenError?.(o.host, o.port, why, e) ??
        new NativeTransportError('DIOCP_ERR_NATIVE_LISTEN', `cannot listen on ${o.host}:${o.port}: ${why}`, e.errno ?? 0, e.syscall ?? '', { cause: e });
      return Promise.reject(wrapped);
    }
    this.records = this.server.records;
    this.counters = this.server.counters;
    this.mask = this.records.length / RECORD_WORDS - 1;
    return Promise.resolve({ host: o.host, port: this.server.port });
  }

  // ---- IO thread -> JavaScript ----

  private readonly onBatch = (tail: number, head: number, blocks: ArrayBuffer[] | undefined): void => {
    const rec = this.records;
    const mask = this.mask;
    const events = this.events!;
    const gens = this.gens;
    const state = this.state;
    let bi = 0;
    let group: Frame[] | null = null;
    let groupId = -1;
    // The receiver's fast path: frames one by one, then onFramesEnd (no Frame object or array).
    const fast = events.onFrame !== undefined && events.onFramesEnd !== undefined;
    let inRun = false;
    let failure: unknown = undefined;
    let failed = false;
    this.inBatch = true;
    for (let i = tail; i !== head; i = (i + 1) >>> 0) {
      const o = (i & mask) << 3;
      const w0 = rec[o]!;
      const type = w0 & 0xff;
      try {
        if (type === REC_FRAME || type === REC_FRAME_OWNED) {
          const slot = rec[o + 1]!;
          const gen = rec[o + 2]!;
          const len = rec[o + 6]!;
          let payload: Buffer;
          if (type === REC_FRAME) payload = new PayloadBuffer(this.current, rec[o + 5]!, len) as Buffer;
          else payload = len > 0 ? (new PayloadBuffer(blocks![bi++]!) as Buffer) : EMPTY;
          if (gens[slot] !== gen || state[slot] !== OPEN) continue; // closed by us: dropped, as node:net does
          const id = gen * SLOT_SPACE + slot;
          if (fast) {
            if (id !== groupId) {
              if (inRun) {
                inRun = false;
                events.onFramesEnd!(groupId);
              }
              groupId = id;
            }
            inRun = true;
            events.onFrame!(id, (w0 >>> 8) & 0xff, w0 >>> 16, rec[o + 4]!, payload);
            continue;
          }
          if (id !== groupId) {
            if (group !== null) events.onFrames(groupId, group);
            group = [];
            groupId = id;
          }
          group!.push({ flags: (w0 >>> 8) & 0xff, command: w0 >>> 16, status: rec[o + 3]!, requestId: rec[o + 4]!, payload });
          continue;
        }
        // Any other record ends a run of frames: deliver it first, to keep the order.
        if (inRun) {
          inRun = false;
          events.onFramesEnd!(groupId);
        }
        if (group !== null) {
          const g = group;
          group = null;
          events.onFrames(groupId, g);
        }
        groupId = -1;
        if (type === REC_BLOCK) {
          this.current = blocks![bi++]!;
        } else if (type === REC_OPEN) {
          const slot = rec[o + 1]!;
          const gen = rec[o + 2]!;
          gens[slot] = gen;
          state[slot] = OPEN;
          this.tickBytes[slot] = 0;
          const w3 = rec[o + 3]!;
          const address = w3 >>> 16 === 4 ? ipv4(rec[o + 4]!) : ipv6(rec, o + 4);
          events.onOpen(gen * SLOT_SPACE + slot, { address, port: w3 & 0xffff });
        } else if (type === REC_CLOSE) {
          const slot = rec[o + 1]!;
          const gen = rec[o + 2]!;
          if (gens[slot] === gen) {
            gens[slot] = 0;
            events.onClose(gen * SLOT_SPACE + slot, CLOSE_REASONS[rec[o + 3]!] ?? 'error');
          }
        } else if (type === REC_PROTO_ERROR) {
          const slot = rec[o + 1]!;
          const gen = rec[o + 2]!;
          if (gens[slot] === gen && state[slot] === OPEN) {
            state[slot] = FAILED;
            // The native layer sends the error frame and closes, after what is queued now:
            // answers to the good frames that preceded the bad one still go out first.
            this.op(this.k.OP_PROTO_CLOSE, slot, gen);
            const d = this.addon.describeError(rec[o + 3]!, rec[o + 5]!, rec[o + 6]!);
            const command = w0 >>> 16;
            const requestId = rec[o + 4]!;
            const err = this.hooks.protocolError?.(d.code, d.message, command, requestId) ?? (new NativeProtocolError(d.code, d.message, command, requestId) as unknown as E);
            events.onProtocolError(gen * SLOT_SPACE + slot, err);
          }
        } else if (type === REC_DONE) {
          const token = rec[o + 3]!;
          const resolve = this.waiting.get(token);
          this.waiting.delete(token);
          resolve?.();
        }
      } catch (err) {
        // A throwing handler must not lose the rest of the batch; the first error is rethrown.
        if (!failed) {
          failed = true;
          failure = err;
        }
      }
    }
    try {
      if (inRun) events.onFramesEnd!(groupId);
      if (group !== null) events.onFrames(groupId, group);
    } catch (err) {
      if (!failed) {
        failed = true;
        failure = err;
      }
    }
    this.inBatch = false;
    this.flush();
    if (failed) throw failure;
  };

  // ---- JavaScript -> IO thread ----

  private ensure(bytes: number): void {
    const need = this.outLen + bytes;
    if (need <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < need) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.out.copy(grown, 0, 0, this.outLen);
    this.out = grown;
    this.outWords = new Uint32Array(grown.buffer, grown.byteOffset, size >>> 2);
  }

  private op(type: number, slot: number, gen: number): void {
    this.ensure(16);
    const w = this.outLen >>> 2;
    const words = this.outWords;
    words[w] = type;
    words[w + 1] = slot;
    words[w + 2] = gen;
    words[w + 3] = 0;
    this.outLen += 16;
    this.openOp = -1;
    this.schedule();
  }

  private schedule(): void {
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** One submit for everything queued since the last one. */
  private flush(): void {
    if (this.outLen === 0 || this.server === null) return;
    this.server.submit(this.out, this.outLen);
    this.outLen = 0;
    this.openOp = -1;
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) this.tickBytes[touched[i]!] = 0;
    touched.length = 0;
    if (this.out.length > OUT_KEEP) {
      this.out = Buffer.allocUnsafe(OUT_INITIAL);
      this.outWords = new Uint32Array(this.out.buffer, this.out.byteOffset, OUT_INITIAL >>> 2);
    }
  }

  send(conn: number, flags: number, command: number, status: number, requestId: number, payload: Uint8Array, start = 0, end = payload.length): boolean {
    const slot = conn % SLOT_SPACE;
    const gen = (conn - slot) / SLOT_SPACE;
    if (this.gens[slot] !== gen || this.state[slot] !== OPEN || this.server === null) return false;
    const length = end - start;
    const size = 16 + length;
    const queued = this.tickBytes[slot]!;
    if (queued + size > this.options.maxSendQueueBytes) {
      // More than the bound in one tick: the IO thread would close it anyway; stop copying now.
      this.state[slot] = CLOSING;
      this.op(this.k.OP_ABORT_SLOW, slot, gen);
      return false;
    }
    if (queued === 0) this.touched.push(slot);
    this.tickBytes[slot] = queued + size;
    // 16 (op header) + size + 3 (padding) covers both a new op and extending the open one.
    this.ensure(19 + size);
    const words = this.outWords;
    const out = this.out;
    let h: number;
    if (this.openOp >= 0 && this.openSlot === slot && this.openGen === gen && words[this.openOp + 3]! + size <= OP_MAX_BYTES) {
      h = this.openEnd;
      words[this.openOp + 3] += size;
    } else {
      const w = this.outLen >>> 2;
      words[w] = OP_SEND;
      words[w + 1] = slot;
      words[w + 2] = gen;
      words[w + 3] = size;
      this.openOp = w;
      this.openSlot = slot;
      this.openGen = gen;
      h = this.outLen + 16;
    }
    if (HOST_LE && (h & 3) === 0) {
      // An aligned header: four word stores, each big-endian on the wire.
      const w = h >>> 2;
      words[w] = HEADER_W0 | ((flags & 0xff) << 24);
      words[w + 1] = ((command >>> 8) & 0xff) | ((command & 0xff) << 8) | ((status >>> 8) & 0xff) << 16 | ((status & 0xff) << 24);
      words[w + 2] = (requestId >>> 24) | ((requestId >>> 8) & 0xff00) | ((requestId & 0xff00) << 8) | ((requestId & 0xff) << 24);
      words[w + 3] = (length >>> 24) | ((length >>> 8) & 0xff00) | ((length & 0xff00) << 8) | ((length & 0xff) << 24);
    } else {
      out[h] = 0xd1;
      out[h + 1] = 0x0c;
      out[h + 2] = 1;
      out[h + 3] = flags;
      out[h + 4] = command >>> 8;
      out[h + 5] = command;
      out[h + 6] = status >>> 8;
      out[h + 7] = status;
      out[h + 8] = requestId >>> 24;
      out[h + 9] = requestId >>> 16;
      out[h + 10] = requestId >>> 8;
      out[h + 11] = requestId;
      out[h + 12] = length >>> 24;
      out[h + 13] = length >>> 16;
      out[h + 14] = length >>> 8;
      out[h + 15] = length;
    }
    if (length > 0) {
      // The whole payload (the usual case): TypedArray.set directly, without Buffer.copy's
      // argument checks. A range: Buffer.copy takes it without allocating a view of it.
      if (start === 0 && end === payload.length) out.set(payload, h + 16);
      else if (Buffer.isBuffer(payload)) payload.copy(out, h + 16, start, end);
      else out.set(payload.subarray(start, end), h + 16);
    }
    this.openEnd = h + size;
    this.outLen = (this.openEnd + 3) & ~3;
    this.schedule();
    return true;
  }

  close(conn: number): void {
    const slot = conn % SLOT_SPACE;
    const gen = (conn - slot) / SLOT_SPACE;
    if (this.gens[slot] !== gen || this.state[slot] !== OPEN) return;
    this.state[slot] = CLOSING;
    this.op(this.k.OP_CLOSE, slot, gen);
  }

  /** Post an op that the IO thread answers with a DONE record; resolves then. */
  private request(type: number): Promise<void> {
    const token = this.nextToken++;
    const done = new Promise<void>((resolve) => this.waiting.set(token, resolve));
    this.op(type, token, 0);
    this.flush();
    return done;
  }

  stopAccepting(): Promise<void> {
    if (this.server === null || this.shutdownPromise) return Promise.resolve();
    // Refused from now on, as with node:net's server.close(); the IO thread closes the socket.
    this.server.stopAccepting();
    return this.request(this.k.OP_STOP_ACCEPT);
  }

  pauseReading(): void {
    if (this.server === null) return;
    this.op(this.k.OP_PAUSE, 0, 0);
    this.flush();
  }

  shutdown(): Promise<void> {
    if (this.shutdownPromise) return this.shutdownPromise;
    if (this.server === null) {
      this.stopped = true;
      return Promise.resolve();
    }
    // Every connection is flushed and closed (a peer that does not read is cut after
    // CLOSE_GRACE_MS); their onClose events arrive before DONE.
    this.server.stopAccepting();
    this.shutdownPromise = this.request(this.k.OP_SHUTDOWN).then(() => {
      this.last = this.stats();
      this.server!.dispose();
      this.server = null;
      this.stopped = true;
      this.counters = null;
    });
    return this.shutdownPromise;
  }

  stats(): TransportStats {
    const c = this.counters;
    if (c === null) return this.last ?? { connections: 0, accepted: 0, rejected: 0, closedIdle: 0, closedSlow: 0, bytesIn: 0, bytesOut: 0, writes: 0, sendQueueBytes: 0 };
    const k = this.k;
    return {
      connections: Number(c[k.CNT_CONNECTIONS]),
      accepted: Number(c[k.CNT_ACCEPTED]),
      rejected: Number(c[k.CNT_REJECTED]),
      closedIdle: Number(c[k.CNT_CLOSED_IDLE]),
      closedSlow: Number(c[k.CNT_CLOSED_SLOW]),
      bytesIn: Number(c[k.CNT_BYTES_IN]),
      bytesOut: Number(c[k.CNT_BYTES_OUT]),
      writes: Number(c[k.CNT_WRITES]),
      sendQueueBytes: Number(c[k.CNT_QUEUED_BYTES]) + this.outLen,
    };
  }

  /** Every native counter by name (reads, wake-ups, submits, ...): for benches and diagnostics. */
  nativeCounters(): Record<string, number> {
    const c = this.counters;
    const out: Record<string, number> = {};
    if (c === null) return out;
    for (const [name, index] of Object.entries(this.k)) {
      if (name.startsWith('CNT_')) out[name.slice(4).toLowerCase()] = Number(c[index]);
    }
    return out;
  }
}

function ipv4(w: number): string {
  return `${w & 0xff}.${(w >>> 8) & 0xff}.${(w >>> 16) & 0xff}.${w >>> 24}`;
}

/** RFC 5952 text of 16 address bytes held in four LE words, as node prints remote addresses. */
function ipv6(rec: Uint32Array, at: number): string {
  const b = new Uint8Array(rec.buffer, rec.byteOffset + at * 4, 16);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
