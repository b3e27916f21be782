/**
 * A monotonically increasing 64-bit counter that costs a number add on the hot path.
 * The low part is a double, exact up to 2^53; it is folded into a bigint long before it
 * could lose precision, so the total is exact up to 2^64 and beyond (DIOCP's own echo test
 * once overflowed a 32-bit counter).
 */
export class Counter64 {
  private low = 0;
  private high = 0n;
  private static readonly FOLD = 2 ** 52;

  add(n: number): void {
    this.low += n;
    if (this.low >= Counter64.FOLD) {
      this.high += BigInt(this.low);
      this.low = 0;
    }
  }

  inc(): void {
    if (++this.low >= Counter64.FOLD) {
      this.high += BigInt(this.low);
      this.low = 0;
    }
  }

  get value(): bigint {
    return this.high + BigInt(this.low);
  }
}
