/**
 * Seeded random data for tests. Tests never use Math.random: every case is
 * reproducible from its seed, so a failure report names the exact inputs.
 */

/** mulberry32: a tiny 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rng = () => number;

/** Uniform in [-amp, amp), rounded to f32. */
export function randomF32(rng: Rng, n: number, amp = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * amp;
  return out;
}

/** Integer in [lo, hi] inclusive. */
export function randomInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Random 32-bit patterns (for bit-level conversion tests). */
export function randomU32(rng: Rng, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.floor(rng() * 65536) << 16 | Math.floor(rng() * 65536)) >>> 0;
  return out;
}
