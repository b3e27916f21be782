import { describe, expect, it } from 'vitest';
import { RidTable } from '../../src/dispatch/remote/rid-table.js';

type E = { rid: number; name: string };
const entry = (name: string): E => ({ rid: -1, name });

describe('RidTable (the remote dispatcher table of outstanding request ids)', () => {
  it('hands out ids in sequence from its start, finds and removes by id', () => {
    const t = new RidTable<E>(41);
    const a = entry('a');
    const b = entry('b');
    expect(t.add(a)).toBe(42);
    expect(t.add(b)).toBe(43);
    expect(a.rid).toBe(42);
    expect(t.get(42)).toBe(a);
    expect(t.get(43)).toBe(b);
    expect(t.size).toBe(2);
    expect(t.delete(42)).toBe(true);
    expect(t.delete(42)).toBe(false);
    expect(t.get(42)).toBeUndefined();
    expect(t.size).toBe(1);
  });

  it('never confuses an id with another that shares its slot (a late answer to an id already reused for a slot)', () => {
    const t = new RidTable<E>(0);
    const first = entry('first');
    const rid = t.add(first);
    t.delete(rid);
    // Walk ids around the table until the same slot holds a new entry.
    let other: E | null = null;
    for (let i = 0; i < 1024; i++) {
      const e = entry(`e${i}`);
      const id = t.add(e);
      if ((id & 1023) === (rid & 1023)) {
        other = e;
        break;
      }
      t.delete(id);
    }
    expect(other).not.toBeNull();
    expect(other!.rid).not.toBe(rid);
    expect(t.get(rid)).toBeUndefined(); // the late answer finds nothing
    expect(t.delete(rid)).toBe(false); // and removes nothing
    expect(t.get(other!.rid)).toBe(other);
  });

  it('skips an id whose slot a slow request still holds, so ids stay unique among outstanding ones', () => {
    const t = new RidTable<E>(0);
    const slow = entry('slow');
    const slowId = t.add(slow);
    const seen = new Set<number>([slowId]);
    for (let i = 0; i < 5000; i++) {
      const e = entry(`x${i}`);
      const id = t.add(e);
      expect(seen.has(id)).toBe(false);
      expect(t.get(id)).toBe(e);
      t.delete(id);
    }
    expect(t.get(slowId)).toBe(slow);
    expect(t.size).toBe(1);
  });

  it('grows past its first size and keeps every entry findable, across the u32 wrap', () => {
    const t = new RidTable<E>(0xffff_fff0);
    const all: E[] = [];
    for (let i = 0; i < 5000; i++) {
      const e = entry(`n${i}`);
      t.add(e);
      all.push(e);
    }
    expect(all.some((e) => e.rid < 100)).toBe(true); // wrapped
    expect(new Set(all.map((e) => e.rid)).size).toBe(5000);
    for (const e of all) expect(t.get(e.rid)).toBe(e);
    expect(t.values()).toHaveLength(5000);
    for (const e of t.values()) t.delete(e.rid);
    expect(t.size).toBe(0);
    t.add(entry('again'));
    t.clear();
    expect(t.size).toBe(0);
    expect(t.values()).toEqual([]);
  });
});
