import { statusName } from '../protocol/constants.js';
import { Counter64 } from '../util/counter64.js';

/** Snapshot of a gateway's counters. Every count is a 64-bit bigint. */
export interface GatewayStats {
  connections: { now: number; max: number; accepted: bigint; closed: bigint };
  framesIn: bigint;
  framesOut: bigint;
  bytesIn: bigint;
  bytesOut: bigint;
  /** Error frames sent, by status name (`PROTOCOL_ERROR`, `TIMEOUT`, …, `APPLICATION`). */
  errors: Record<string, bigint>;
  /** Requests being handled now. */
  inFlight: number;
  /** Replies dropped because their connection had closed or was replaced (the generation check). */
  lateReplies: bigint;
  /** Connections closed for being idle / for not reading their responses (from the transport). */
  closedIdle: number;
  closedSlow: number;
  rejectedConnections: number;
  /** Bytes queued for sending and not yet written, all connections (backpressure; 0 if the transport does not say). */
  sendQueueBytes: number;
}

export class GatewayCounters {
  connectionsNow = 0;
  connectionsMax = 0;
  readonly accepted = new Counter64();
  readonly closed = new Counter64();
  readonly framesIn = new Counter64();
  readonly framesOut = new Counter64();
  readonly bytesIn = new Counter64();
  readonly bytesOut = new Counter64();
  readonly lateReplies = new Counter64();
  private readonly errors = new Map<string, Counter64>();

  error(status: number): void {
    const name = statusName(status);
    let c = this.errors.get(name);
    if (c === undefined) this.errors.set(name, (c = new Counter64()));
    c.inc();
  }

  errorSnapshot(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const [name, c] of this.errors) out[name] = c.value;
    return out;
  }
}

/** JSON.stringify replacer that writes bigints as decimal strings. */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
