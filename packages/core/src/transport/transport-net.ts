import { Buffer } from 'node:buffer';
import net from 'node:net';
import { FrameDecoder } from '../codec/decoder.js';
import { writeHeader, type Frame } from '../codec/frame.js';
import { diocpError, ProtocolError } from '../errors.js';
import { HEADER_SIZE } from '../protocol/constants.js';
import type { CloseReason, Transport, TransportEvents, TransportOptions, TransportStats } from './transport.js';

/** Output buffers below this size are copied out on flush and reused; larger ones are handed over. */
const OUT_INITIAL = 16 * 1024;

class NetConnection {
  readonly decoder: FrameDecoder;
  out: Buffer = Buffer.allocUnsafe(OUT_INITIAL);
  outLen = 0;
  queued = false;
  lastReadAt: number;
  closeReason: CloseReason | null = null;
  closing = false;
  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    maxFrameSize: number,
    now: number,
  ) {
    this.decoder = new FrameDecoder({ maxFrameSize, side: 'server' });
    this.lastReadAt = now;
  }
}

/** The always-available transport, on node:net. */
export class NetTransport implements Transport {
  readonly name = 'net';
  private readonly conns = new Map<number, NetConnection>();
  private server: net.Server | null = null;
  private events: TransportEvents | null = null;
  private nextId = 1;
  private dirty: NetConnection[] = [];
  private flushScheduled = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private readingPaused = false;
  private readonly counters = { accepted: 0, rejected: 0, closedIdle: 0, closedSlow: 0, bytesIn: 0, bytesOut: 0, writes: 0 };

  constructor(private readonly options: TransportOptions) {}

  listen(events: TransportEvents): Promise<{ host: string; port: number }> {
    this.events = events;
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server = null;
        reject(diocpError('DIOCP_ERR_TRANSPORT_LISTEN', this.options.host, this.options.port, err.code ?? err.message));
      };
      server.once('error', onError);
      server.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => {
        server.off('error', onError);
        const addr = server.address() as net.AddressInfo;
        if (this.options.idleTimeoutMs > 0) {
          // One sweep for all connections instead of a timer per socket; an idle check
          // every quarter of the timeout closes a silent connection within 1.25× the timeout.
          const every = Math.max(10, Math.min(1000, Math.floor(this.options.idleTimeoutMs / 4)));
          this.idleTimer = setInterval(() => this.sweepIdle(), every);
          this.idleTimer.unref();
        }
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.server === null || this.conns.size >= this.options.maxConnections) {
      this.counters.rejected++;
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    const conn = new NetConnection(id, socket, this.options.maxFrameSize, Date.now());
    this.conns.set(id, conn);
    this.counters.accepted++;
    const events = this.events!;
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', () => {
      conn.closeReason ??= 'error';
    });
    socket.on('close', () => {
      this.conns.delete(id);
      events.onClose(id, conn.closeReason ?? 'peer');
    });
    if (this.readingPaused) socket.pause();
    events.onOpen(id, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
  }

  private onData(conn: NetConnection, chunk: Buffer): void {
    if (conn.closing) return;
    this.counters.bytesIn += chunk.length;
    conn.lastReadAt = Date.now();
    const frames: Frame[] = [];
    try {
      conn.decoder.push(chunk, frames);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      conn.closing = true;
      conn.socket.pause();
      if (frames.length > 0) this.events!.onFrames(conn.id, frames);
      this.events!.onProtocolError(conn.id, err);
      return;
    }
    if (frames.length > 0) this.events!.onFrames(conn.id, frames);
  }

  send(id: number, flags: number, command: number, status: number, requestId: number, payload: Uint8Array, start = 0, end = payload.length): boolean {
    const conn = this.conns.get(id);
    if (conn === undefined || conn.socket.destroyed) return false;
    const length = end - start;
    const size = HEADER_SIZE + length;
    if (conn.outLen + size + conn.socket.writableLength > this.options.maxSendQueueBytes) {
      // The peer does not read its responses: close it rather than buffer without bound.
      this.counters.closedSlow++;
      conn.closeReason = 'slow';
      conn.outLen = 0;
      conn.socket.destroy();
      return false;
    }
    if (conn.out.length - conn.outLen < size) {
      const grown = Buffer.allocUnsafe(Math.max(conn.out.length * 2, conn.outLen + size));
      conn.out.copy(grown, 0, 0, conn.outLen);
      conn.out = grown;
    }
    writeHeader(conn.out, conn.outLen, flags, command, status, requestId, length);
    // Buffer.copy takes a range without allocating a view of it.
    if (Buffer.isBuffer(payload)) payload.copy(conn.out, conn.outLen + HEADER_SIZE, start, end);
    else conn.out.set(start === 0 && end === payload.length ? payload : payload.subarray(start, end), conn.outLen + HEADER_SIZE);
    conn.outLen += size;
    if (!conn.queued) {
      conn.queued = true;
      this.dirty.push(conn);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushAll);
      }
    }
    return true;
  }

  /** One write per connection per tick, whatever number of frames were queued. */
  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) this.flush(dirty[i]!);
  };

  private flush(conn: NetConnection): void {
    conn.queued = false;
    const len = conn.outLen;
    if (len === 0 || conn.socket.destroyed) return;
    conn.outLen = 0;
    let chunk: Buffer;
    if (len <= OUT_INITIAL / 2) {
      chunk = Buffer.allocUnsafe(len);
      conn.out.copy(chunk, 0, 0, len);
    } else {
      chunk = conn.out.subarray(0, len);
      conn.out = Buffer.allocUnsafe(OUT_INITIAL);
    }
    this.counters.bytesOut += len;
    this.counters.writes++;
    conn.socket.write(chunk);
  }

  close(id: number): void {
    const conn = this.conns.get(id);
    if (conn === undefined) return;
    conn.closing = true;
    conn.closeReason ??= 'closed';
    this.flush(conn);
    // Let what is queued reach the peer, then close both directions.
    conn.socket.destroySoon();
  }

  stopAccepting(): Promise<void> {
    const server = this.server;
    if (server === null) return Promise.resolve();
    this.server = null;
    // server.close() only calls back once every connection is gone; do not wait for that here.
    return new Promise((resolve) => {
      server.close();
      resolve();
    });
  }

  pauseReading(): void {
    this.readingPaused = true;
    for (const conn of this.conns.values()) conn.socket.pause();
  }

  async shutdown(): Promise<void> {
    await this.stopAccepting();
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    const closing: Promise<void>[] = [];
    for (const conn of this.conns.values()) {
      closing.push(new Promise((resolve) => conn.socket.once('close', () => resolve())));
      this.close(conn.id);
      // A peer that never reads must not hold shutdown up forever.
      setTimeout(() => conn.socket.destroy(), 5000).unref();
    }
    await Promise.all(closing);
  }

  private sweepIdle(): void {
    const deadline = Date.now() - this.options.idleTimeoutMs;
    for (const conn of this.conns.values()) {
      if (conn.lastReadAt < deadline && !conn.closing) {
        this.counters.closedIdle++;
        conn.closeReason = 'idle';
        conn.closing = true;
        conn.socket.destroy();
      }
    }
  }

  stats(): TransportStats {
    let queued = 0;
    for (const conn of this.conns.values()) queued += conn.outLen + conn.socket.writableLength;
    return { connections: this.conns.size, ...this.counters, sendQueueBytes: queued };
  }
}
