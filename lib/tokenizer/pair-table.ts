/**
 * An open-addressing hash table from a pair of token ids (left, right) to an
 * int32 value: HF merges' (left, right) -> merge index * stride + merged id
 * packed as a float64 (merge index and id fit in 2^52). A JS Map keyed by
 * left * size + right hashes heap numbers (keys above 2^31) slowly: this is
 * 5-10x faster to build and to query.
 */
export class PairTable {
  private readonly keys: Int32Array; // 2 per slot: left, right (left = -1: empty)
  private readonly values: Float64Array;
  private readonly mask: number;

  constructor(capacity: number) {
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.mask = slots - 1;
    this.keys = new Int32Array(2 * slots).fill(-1);
    this.values = new Float64Array(slots);
  }

  private slot(left: number, right: number): number {
    let h = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    let s = h & this.mask;
    for (;;) {
      const l = this.keys[2 * s]!;
      if (l === -1 || (l === left && this.keys[2 * s + 1] === right)) return s;
      s = (s + 1) & this.mask;
    }
  }

  /** Sets (replaces) the value of (left, right); ids must be >= 0. */
  set(left: number, right: number, value: number): void {
    const s = this.slot(left, right);
    this.keys[2 * s] = left;
    this.keys[2 * s + 1] = right;
    this.values[s] = value;
  }

  /** The value of (left, right), or -1. */
  get(left: number, right: number): number {
    const s = this.slot(left, right);
    return this.keys[2 * s] === -1 ? -1 : this.values[s]!;
  }
}
