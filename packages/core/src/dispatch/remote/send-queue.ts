import type { Writable } from 'zeromq';

/**
 * zeromq.js v6 allows one pending send per socket (a second one while the first waits fails
 * with EBUSY). Messages wait here, in order, while one is in flight. A ROUTER never blocks
 * (it drops for a peer past its high-water mark), so there the queue stays empty; a worker's
 * DEALER blocks while the gateway is away, and then at most what the worker holds (its
 * credit's answers) and one heartbeat wait here.
 */
export class SendQueue {
  private readonly queue: Buffer[][] = [];
  private head = 0;
  private busy = false;
  private closed = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly socket: Writable<Buffer[]>,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Messages waiting (not counting the one in flight). */
  get length(): number {
    return this.queue.length - this.head;
  }

  /** Nothing waiting and nothing in flight. */
  get idle(): boolean {
    return !this.busy && this.head === this.queue.length;
  }

  /** Drop what waits (the message in flight, if any, still goes). */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
  }

  send(message: Buffer[]): void {
    if (this.closed) return;
    if (this.busy) {
      this.queue.push(message);
      return;
    }
    this.write(message);
  }

  private write(message: Buffer[]): void {
    this.busy = true;
    this.socket.send(message).then(this.next, (err: Error) => {
      if (!this.closed) this.onError(err);
      this.next();
    });
  }

  private readonly next = (): void => {
    this.busy = false;
    if (this.closed) return this.wake();
    if (this.head < this.queue.length) {
      const m = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Buffer[];
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.write(m);
      return;
    }
    this.wake();
  };

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ (or the queue closed). */
  flushed(): Promise<void> {
    if (!this.busy && this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Drop what waits; later sends are ignored. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.head = 0;
    if (!this.busy) this.wake();
  }
}
