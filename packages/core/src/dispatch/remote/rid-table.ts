/**
 * The requests a remote dispatcher has sent and not had answered, by request id, without a
 * Map: ids are handed out in sequence (u32, wrapping) and index a power-of-two array, so adding,
 * finding and removing one allocates nothing (a Map's table is reallocated every few thousand
 * inserts and deletes, which at half a million requests a second was a good part of the
 * gateway's garbage). An id whose slot is still held by an older, slow request is skipped, so
 * ids stay unique among outstanding requests; the table doubles once it is half full.
 */
export interface RidEntry {
  rid: number;
}

const INITIAL = 1024;

export class RidTable<T extends RidEntry> {
  private slots: (T | undefined)[] = new Array<T | undefined>(INITIAL).fill(undefined);
  private mask = INITIAL - 1;
  private last: number;
  private count = 0;

  /** `start`: the id before the first one handed out (a random start makes ids of an earlier gateway unlikely to match). */
  constructor(start = 0) {
    this.last = start >>> 0;
  }

  get size(): number {
    return this.count;
  }

  /** Give `entry` the next free id, keep it, and return the id. */
  add(entry: T): number {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    for (;;) {
      const rid = (this.last = (this.last + 1) >>> 0);
      const i = rid & this.mask;
      if (this.slots[i] === undefined) {
        entry.rid = rid;
        this.slots[i] = entry;
        this.count++;
        return rid;
      }
    }
  }

  get(rid: number): T | undefined {
    const e = this.slots[rid & this.mask];
    return e !== undefined && e.rid === rid ? e : undefined;
  }

  /** Remove the entry with this id; false when there is none (answered already, or never sent). */
  delete(rid: number): boolean {
    const i = rid & this.mask;
    const e = this.slots[i];
    if (e === undefined || e.rid !== rid) return false;
    this.slots[i] = undefined;
    this.count--;
    return true;
  }

  /** Every entry (a snapshot: safe to delete while walking it). */
  values(): T[] {
    const out: T[] = [];
    for (const e of this.slots) if (e !== undefined) out.push(e);
    return out;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.count = 0;
  }

  private grow(): void {
    const old = this.slots;
    const size = old.length * 2;
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
    // Ids in distinct old slots differ in their low bits, so they land in distinct new slots.
    for (const e of old) if (e !== undefined) this.slots[e.rid & this.mask] = e;
  }
}
