import { performance } from 'node:perf_hooks';

/** A node of an intrusive deadline list: the request object itself, so tracking allocates nothing. */
export interface DeadlineNode {
  deadline: number;
  prev: DeadlineNode | null;
  next: DeadlineNode | null;
  list: DeadlineList | null;
}

/**
 * Requests with the same timeout expire in the order they were added, so one list per
 * timeout value, kept in insertion order, needs one timer for its head and O(1) removal.
 */
export class DeadlineList {
  private head: DeadlineNode | null = null;
  private tail: DeadlineNode | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly onExpire: (node: DeadlineNode) => void,
  ) {}

  /** Track `node`; `now` lets a caller adding many nodes read the clock once. */
  add(node: DeadlineNode, now = performance.now()): void {
    node.deadline = now + this.timeoutMs;
    node.list = this;
    node.prev = this.tail;
    node.next = null;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    // A list for timeout 0 only tracks what is pending (for shutdown); it never expires.
    if (this.timer === null && this.timeoutMs > 0) this.arm();
  }

  remove(node: DeadlineNode): void {
    if (node.list !== this) return;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = null;
    node.list = null;
    // The timer stays armed: when it fires it finds the new head and re-arms, which is
    // cheaper than re-arming on every removal.
  }

  private arm(): void {
    const head = this.head;
    if (head === null) {
      this.timer = null;
      return;
    }
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(head.deadline - performance.now())));
  }

  private readonly fire = (): void => {
    const now = performance.now();
    let node = this.head;
    while (node !== null && node.deadline <= now) {
      this.remove(node);
      this.onExpire(node);
      node = this.head;
    }
    this.arm();
  };

  /** Stop the timer and hand every pending node to `fn` (after unlinking it). */
  drain(fn: (node: DeadlineNode) => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.head) {
      const node = this.head;
      this.remove(node);
      fn(node);
    }
  }
}
