/** A FIFO with O(1) push, shift and unshift (a growable ring): queues of 100,000 jobs stay cheap. */
export class Deque<T> {
  private buf: (T | undefined)[] = new Array(16);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(value: T): void {
    if (this.count === this.buf.length) this.grow();
    this.buf[(this.head + this.count) & (this.buf.length - 1)] = value;
    this.count++;
  }

  unshift(value: T): void {
    if (this.count === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = value;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const value = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.count--;
    return value;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.buf[this.head];
  }

  /** Remove every element for which `drop` is true; returns how many went. */
  removeWhere(drop: (value: T) => boolean): number {
    const kept: T[] = [];
    let dropped = 0;
    while (this.count > 0) {
      const v = this.shift()!;
      if (drop(v)) dropped++;
      else kept.push(v);
    }
    for (const v of kept) this.push(v);
    return dropped;
  }

  private grow(): void {
    const old = this.buf;
    const next: (T | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}
