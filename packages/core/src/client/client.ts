import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { FrameDecoder } from '../codec/decoder.js';
import { encodeFrame, type Frame } from '../codec/frame.js';
import { findPayloadCodec, payloadCodecs, type PayloadCodec, type PayloadCodecName } from '../codec/payload-codecs.js';
import { diocpError, DiocpError, ProtocolError, RemoteError } from '../errors.js';
import { DEFAULT_MAX_FRAME_SIZE, Flags, PING_COMMAND, statusName } from '../protocol/constants.js';

export interface ReconnectOptions {
  /** First wait after a lost connection (ms). Default 100. */
  initialDelayMs?: number;
  /** Longest wait between attempts (ms). Default 5000. */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row. Default: never. */
  maxAttempts?: number;
}

export interface ClientOptions {
  host?: string;
  port: number;
  /** Default per-request timeout (ms). Default 30000. */
  timeoutMs?: number;
  /** Time allowed for the TCP connect (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** Largest frame accepted from the server. Default 16 MiB. */
  maxFrameSize?: number;
  /** Reconnect with exponential backoff when the connection drops. Off by default. */
  reconnect?: boolean | ReconnectOptions;
  /** Requests that may wait for a reconnect. Default 1000. */
  maxQueued?: number;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Encode the payload and decode the reply with this codec (`raw` by default: Buffer in, Buffer out). */
  codec?: PayloadCodecName | PayloadCodec;
}

interface Pending {
  command: number;
  codec: PayloadCodec;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export interface ClientEvents {
  push: [command: number, payload: Buffer];
  /** The connection dropped; `willReconnect` tells whether the client tries again. */
  disconnect: [error: Error, willReconnect: boolean];
  reconnect: [attempt: number];
  /** The client is closed for good (by `close()` or after giving up reconnecting). */
  close: [];
  error: [error: Error];
}

/**
 * A diocp client: pipelines any number of requests on one connection, matches replies by
 * request id, raises server errors as RemoteError carrying the status, delivers PUSH frames
 * as `push` events, and can reconnect with backoff.
 */
export class Client extends EventEmitter<ClientEvents> {
  private socket: net.Socket | null = null;
  private decoder!: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private out: Buffer[] = [];
  private flushQueued = false;
  private queued: Buffer[] = [];
  private closedByUser = false;
  /** Closed for good: by the user, or reconnecting gave up. */
  private ended = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly host: string;
  private readonly opts: Required<Omit<ClientOptions, 'reconnect' | 'host'>> & { reconnect: Required<ReconnectOptions> | null };

  private constructor(options: ClientOptions) {
    super();
    this.host = options.host ?? '127.0.0.1';
    const r = options.reconnect;
    this.opts = {
      port: options.port,
      timeoutMs: options.timeoutMs ?? 30_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      maxQueued: options.maxQueued ?? 1000,
      reconnect: r
        ? {
            initialDelayMs: (typeof r === 'object' && r.initialDelayMs) || 100,
            maxDelayMs: (typeof r === 'object' && r.maxDelayMs) || 5_000,
            maxAttempts: (typeof r === 'object' && r.maxAttempts) || Infinity,
          }
        : null,
    };
  }

  /** Connect to a diocp server. Rejects with DIOCP_ERR_CLIENT_CONNECT when it cannot. */
  static async connect(options: ClientOptions): Promise<Client> {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw diocpError('DIOCP_ERR_CLIENT_BAD_ARGUMENT', `port must be an integer in 1..65535, got ${String(options.port)}`);
    }
    const client = new Client(options);
    await client.open();
    return client;
  }

  /** True while a connection is up. */
  get connected(): boolean {
    return this.socket !== null && !this.socket.connecting && !this.socket.destroyed;
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.opts.port, noDelay: true });
      const timer = setTimeout(() => socket.destroy(new Error(`timed out after ${this.opts.connectTimeoutMs} ms`)), this.opts.connectTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(diocpError('DIOCP_ERR_CLIENT_CONNECT', this.host, this.opts.port, (err as NodeJS.ErrnoException).code ?? err.message));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.attach(socket);
        resolve();
      });
    });
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.decoder = new FrameDecoder({ maxFrameSize: this.opts.maxFrameSize, side: 'client' });
    let lastError: Error | null = null;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      lastError = err;
    });
    socket.on('close', () => this.onClose(socket, lastError));
    if (this.queued.length > 0) {
      const q = this.queued;
      this.queued = [];
      for (const frame of q) this.write(frame);
    }
  }

  private onData(chunk: Buffer): void {
    const frames: Frame[] = [];
    try {
      this.decoder.push(chunk, frames);
    } catch (err) {
      for (const f of frames) this.onFrame(f);
      this.report(err as ProtocolError);
      this.socket?.destroy();
      return;
    }
    for (let i = 0; i < frames.length; i++) this.onFrame(frames[i]!);
  }

  private onFrame(f: Frame): void {
    if ((f.flags & Flags.PUSH) !== 0) {
      this.emit('push', f.command, Buffer.from(f.payload));
      return;
    }
    const p = this.pending.get(f.requestId);
    if (p === undefined) {
      // A reply to a request that already timed out is dropped. A PROTOCOL_ERROR about a
      // frame whose header could not be trusted carries request id 0: tell the user.
      if ((f.flags & Flags.ERROR) !== 0 && f.requestId === 0) this.report(toRemoteError(f));
      return;
    }
    this.pending.delete(f.requestId);
    clearTimeout(p.timer);
    if ((f.flags & Flags.ERROR) !== 0) {
      p.reject(toRemoteError(f));
      return;
    }
    try {
      p.resolve(p.codec === payloadCodecs.raw ? Buffer.from(f.payload) : p.codec.decode(f.payload));
    } catch (err) {
      p.reject(diocpError('DIOCP_ERR_CLIENT_BAD_ARGUMENT', `reply to command ${f.command} is not valid ${p.codec.name}: ${(err as Error).message}`));
    }
  }

  /** Emit 'error' only when someone listens: an unheard 'error' would crash the user's process. */
  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onClose(socket: net.Socket, error: Error | null): void {
    if (this.socket !== socket) return;
    this.socket = null;
    // A request that was sent may or may not have been handled: fail it, never resend it.
    const why = error ? (error as NodeJS.ErrnoException).code ?? error.message : 'closed by the server';
    const err = diocpError('DIOCP_ERR_CLIENT_CLOSED', why);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
    this.out = [];
    const willReconnect = !this.closedByUser && this.opts.reconnect !== null;
    if (!this.closedByUser) this.emit('disconnect', err, willReconnect);
    if (willReconnect) this.scheduleReconnect();
    else this.finalClose();
  }

  private scheduleReconnect(): void {
    const r = this.opts.reconnect!;
    if (this.attempts >= r.maxAttempts) {
      this.finalClose();
      return;
    }
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** this.attempts);
    const delay = base / 2 + Math.random() * (base / 2); // jitter so many clients do not reconnect in step
    this.attempts++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closedByUser) return;
      this.open().then(
        () => {
          this.emit('reconnect', this.attempts);
          this.attempts = 0;
        },
        () => this.scheduleReconnect(),
      );
    }, delay);
  }

  private finalClose(): void {
    this.ended = true;
    const err = diocpError('DIOCP_ERR_CLIENT_CLOSED', this.closedByUser ? 'closed by the client' : 'gave up reconnecting');
    this.queued = [];
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
    this.emit('close');
  }

  /**
   * Send a request and resolve with the reply: a Buffer (raw codec) or the decoded value.
   * Rejects with RemoteError (server answered an error; `.status` says which), or
   * DiocpError DIOCP_ERR_CLIENT_TIMEOUT / DIOCP_ERR_CLIENT_CLOSED.
   */
  request<T = Buffer>(command: number, payload?: unknown, options: RequestOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      let frame: Buffer;
      let id: number;
      let codec: PayloadCodec;
      try {
        codec = pickCodec(options.codec);
        checkCommand(command, true);
        id = this.allocateId();
        frame = encodeFrame(Flags.NONE, command, 0, id, encodePayload(codec, payload));
      } catch (err) {
        reject(err);
        return;
      }
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(diocpError('DIOCP_ERR_CLIENT_TIMEOUT', command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, codec, resolve: resolve as (v: unknown) => void, reject, timer });
      const err = this.write(frame);
      if (err) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  /** Fire and forget: the server answers nothing, not even errors. */
  oneway(command: number, payload?: unknown, options: Pick<RequestOptions, 'codec'> = {}): void {
    checkCommand(command, false);
    const err = this.write(encodeFrame(Flags.ONEWAY, command, 0, 0, encodePayload(pickCodec(options.codec), payload)));
    if (err) throw err;
  }

  /** Round trip to the gateway; resolves with the time taken in ms. */
  async ping(timeoutMs?: number): Promise<number> {
    const start = performance.now();
    await this.request(PING_COMMAND, undefined, { timeoutMs });
    return performance.now() - start;
  }

  /** Send a raw, already-encoded frame (tests and tools). */
  writeRaw(bytes: Uint8Array): void {
    const err = this.write(Buffer.from(bytes));
    if (err) throw err;
  }

  private write(frame: Buffer): DiocpError | null {
    if (this.ended || this.closedByUser) return diocpError('DIOCP_ERR_CLIENT_CLOSED', this.closedByUser ? 'closed by the client' : 'gave up reconnecting');
    if (!this.connected) {
      if (this.opts.reconnect === null || this.socket !== null) return diocpError('DIOCP_ERR_CLIENT_CLOSED', 'not connected');
      if (this.queued.length >= this.opts.maxQueued) return diocpError('DIOCP_ERR_CLIENT_QUEUE_FULL', this.opts.maxQueued);
      this.queued.push(frame);
      return null;
    }
    this.out.push(frame);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flush);
    }
    return null;
  }

  /** All requests issued in one tick leave in one write. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    const out = this.out;
    if (out.length === 0 || this.socket === null) return;
    this.out = [];
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  };

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= 0xffff_ffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /** Close the connection; pending requests fail with DIOCP_ERR_CLIENT_CLOSED. */
  close(): Promise<void> {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const socket = this.socket;
    if (socket === null) {
      this.finalClose();
      return Promise.resolve();
    }
    this.flush();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }
}

/** Connect to a diocp server (see Client). */
export function connect(options: ClientOptions): Promise<Client> {
  return Client.connect(options);
}

function pickCodec(codec: RequestOptions['codec']): PayloadCodec {
  const found = findPayloadCodec(codec);
  if (typeof found === 'string') throw diocpError('DIOCP_ERR_CLIENT_BAD_ARGUMENT', `codec ${found}`);
  return found;
}

function encodePayload(codec: PayloadCodec, payload: unknown): Buffer {
  try {
    return codec.encode(payload);
  } catch (err) {
    throw diocpError('DIOCP_ERR_CLIENT_BAD_ARGUMENT', `payload cannot be encoded as ${codec.name}: ${(err as Error).message}`);
  }
}

function checkCommand(command: number, allowPing: boolean): void {
  const ok = Number.isInteger(command) && command >= 1 && (command <= 0xfeff || (allowPing && command === PING_COMMAND));
  if (!ok) throw diocpError('DIOCP_ERR_CLIENT_BAD_ARGUMENT', `command must be an integer in 0x0001..0xfeff, got ${String(command)}`);
}

function toRemoteError(f: Frame): RemoteError {
  let message = '';
  let data: unknown;
  try {
    const body = JSON.parse(f.payload.toString('utf8')) as { message?: string; data?: unknown };
    message = body.message ?? '';
    data = body.data;
  } catch {
    message = f.payload.toString('utf8');
  }
  return new RemoteError(f.status, statusName(f.status), message, f.command, data);
}
