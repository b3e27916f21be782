import { describe, expect, it } from 'vitest';
import { Counter64 } from '../../src/util/counter64.js';

describe('Counter64', () => {
  it('stays exact past 2^32 and 2^53, up to 2^64', () => {
    const c = new Counter64();
    c.add(2 ** 32);
    c.inc();
    expect(c.value).toBe(2n ** 32n + 1n);
    for (let i = 0; i < 4096; i++) c.add(2 ** 52); // 2^64 in total
    c.inc();
    expect(c.value).toBe(2n ** 64n + 2n ** 32n + 2n);
  });
});
