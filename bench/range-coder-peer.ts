/**
 * Raw coder throughput peers for `tokenpress bench coding`: the npm range
 * coder @thi.ng/range-coder and memcpy, on data with a FIXED byte
 * distribution that our own raw coder bench uses too (fixedDistribution,
 * fixedDistributionBytes), so the three are measured on the same bytes.
 *
 * The distribution: 0.97 of a geometric law with ratio 0.9 over ranks
 * 0..255 plus 0.03 uniform (so every byte has p >= 1.2e-4, representable
 * with 16-bit frequencies), ranks mapped to byte values by the bijection
 * rank -> (rank * 167 + 32) mod 256 so the frequent bytes are scattered, not
 * sorted (a coder that searches cumulative counts from byte 0 gets no free
 * help). Entropy: FIXED_DISTRIBUTION_ENTROPY_BITS (about 4.93 bits/byte).
 */
import { decodeBytes, encodeBytes } from '@thi.ng/range-coder';
import { timeIt } from './common.js';

const GEOMETRIC_RATIO = 0.9;
const UNIFORM_SHARE = 0.03;

/** Byte value of the symbol with probability rank `rank` (0 = most likely). */
export function rankToByte(rank: number): number {
  return (rank * 167 + 32) & 255;
}

/** p[b] for every byte b (256 float64s summing to 1). The same array every call. */
export function fixedDistribution(): Float64Array {
  const p = new Float64Array(256);
  let geoSum = 0;
  for (let r = 0; r < 256; r++) geoSum += GEOMETRIC_RATIO ** r;
  for (let r = 0; r < 256; r++) {
    p[rankToByte(r)] = (1 - UNIFORM_SHARE) * (GEOMETRIC_RATIO ** r / geoSum) + UNIFORM_SHARE / 256;
  }
  return p;
}

/** Shannon entropy of a distribution, bits per symbol. */
export function entropyBits(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) h -= p[i]! * Math.log2(p[i]!);
  return h;
}

/** Entropy of fixedDistribution(): the bits/byte an ideal coder given the distribution reaches. */
export const FIXED_DISTRIBUTION_ENTROPY_BITS = entropyBits(fixedDistribution());

/**
 * n bytes drawn independently from fixedDistribution(), deterministic in
 * `seed` (mulberry32 uniforms, inverse CDF by binary search).
 */
export function fixedDistributionBytes(n: number, seed: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`n: expected an integer >= 0, received ${n}`);
  const p = fixedDistribution();
  // cdf[i] = P(byte < i+1) for i in 0..255; cdf[255] forced to 1 so every draw lands.
  const cdf = new Float64Array(256);
  let acc = 0;
  for (let b = 0; b < 256; b++) cdf[b] = acc += p[b]!;
  cdf[255] = 1;
  const out = new Uint8Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    let lo = 0;
    let hi = 255; // smallest b with u < cdf[b]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (u < cdf[mid]!) hi = mid;
      else lo = mid + 1;
    }
    out[i] = lo;
  }
  return out;
}

/**
 * Bytes per thi.ng block. Its coder keeps 23-bit low/high and adds 1 to its
 * frequency total per symbol; after renormalisation the range is only just
 * above 2^21, so a total past 2^21 (about 2.1M symbols) makes the step
 * range/total zero and corrupts the output. 1 MiB blocks keep it below 2^20 + 257.
 */
export const THING_BLOCK_BYTES = 1 << 20;

/** thi.ng-encodes `data` as independent THING_BLOCK_BYTES blocks. */
export function thingEncodeBlocks(data: Uint8Array): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += THING_BLOCK_BYTES) {
    blocks.push(encodeBytes(data.subarray(at, Math.min(data.length, at + THING_BLOCK_BYTES))));
  }
  return blocks;
}

/** Decodes thingEncodeBlocks' output back into one array of `n` bytes (fewer or more is an error). */
export function thingDecodeBlocks(blocks: readonly Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const b of blocks) {
    const part = decodeBytes(b);
    if (at + part.length > n) throw new Error(`thi.ng decoded more than ${n} bytes`);
    out.set(part, at);
    at += part.length;
  }
  if (at !== n) throw new Error(`thi.ng decoded ${at} of ${n} bytes`);
  return out;
}

export interface RangeCoderPeerResult {
  /** Input bytes per second / 10^6, median of the timed runs. */
  encodeMBs: number;
  decodeMBs: number;
  /** 8 * coded bytes / input bytes (all blocks). */
  bitsPerByte: number;
  /** FIXED_DISTRIBUTION_ENTROPY_BITS, for comparison. */
  entropyBits: number;
  roundTripOk: boolean;
  /** How thi.ng was driven, for the report. */
  how: string;
}

const HOW =
  '@thi.ng/range-coder 1.0.93 exposes only encodeBytes(src) / decodeBytes(src): an adaptive order-0 ' +
  'multi-symbol arithmetic coder (257 counts starting at 1, +1 per coded byte, linear cumulative-count search, ' +
  '23-bit low/high, output one bit at a time through @thi.ng/bitstream, an end symbol). It cannot be given a ' +
  'distribution, so it learns the fixed one as it goes; its 23-bit state caps a block near 2M symbols, so the ' +
  'data is coded as independent 1 MiB blocks (decoding collects each block in a JS array). ' +
  'Timing: one untimed run, then the median of tinybench runs, wall time on one thread.';

/**
 * Encodes and decodes `nBytes` of fixedDistributionBytes(nBytes, seed 1)
 * with @thi.ng/range-coder; returns MB/s each way (10^6 input bytes per
 * second), bits per byte and whether the round trip is exact.
 */
export async function runRangeCoderPeer(nBytes: number, opts: { seed?: number; budgetMs?: number; iterations?: number } = {}): Promise<RangeCoderPeerResult> {
  if (!Number.isSafeInteger(nBytes) || nBytes < 1) throw new RangeError(`nBytes: expected an integer >= 1, received ${nBytes}`);
  const data = fixedDistributionBytes(nBytes, opts.seed ?? 1);
  const budget = { time: opts.budgetMs ?? 2000, iterations: opts.iterations ?? 3 };
  const blocks = thingEncodeBlocks(data); // warmup, and the output the decoder times on
  const enc = await timeIt('thi.ng encode', () => thingEncodeBlocks(data), budget);
  const back = thingDecodeBlocks(blocks, nBytes);
  const dec = await timeIt('thi.ng decode', () => thingDecodeBlocks(blocks, nBytes), budget);
  const coded = blocks.reduce((s, b) => s + b.length, 0);
  let same = back.length === data.length;
  for (let i = 0; same && i < data.length; i++) same = back[i] === data[i];
  return {
    encodeMBs: nBytes / 1e3 / enc.medianMs,
    decodeMBs: nBytes / 1e3 / dec.medianMs,
    bitsPerByte: (8 * coded) / nBytes,
    entropyBits: FIXED_DISTRIBUTION_ENTROPY_BITS,
    roundTripOk: same,
    how: HOW,
  };
}

/** Default memcpy size: far beyond this machine's ~36 MiB L3 (and the 128 MiB that DESIGN.md saw re-read from cache). */
export const MEMCPY_DEFAULT_BYTES = 512 * 2 ** 20;

/**
 * memcpy speed: Uint8Array.prototype.set from one nBytes buffer into
 * another (V8 lowers it to memmove). MB/s counts the bytes copied once
 * (each is read once and written once), 10^6 bytes per second, median of
 * tinybench runs after an untimed one that also faults the pages in. Pass
 * at least 256 MiB so the copy runs from memory, not from cache.
 */
export async function measureMemcpy(
  nBytes: number = MEMCPY_DEFAULT_BYTES,
  opts: { budgetMs?: number; iterations?: number } = {},
): Promise<{ MBs: number; bytes: number; samples: number }> {
  if (!Number.isSafeInteger(nBytes) || nBytes < 1) throw new RangeError(`nBytes: expected an integer >= 1, received ${nBytes}`);
  const src = new Uint8Array(nBytes);
  for (let i = 0; i < nBytes; i += 4096) src[i] = i >>> 12; // touch every page
  const dst = new Uint8Array(nBytes);
  dst.set(src);
  const t = await timeIt('memcpy', () => dst.set(src), { time: opts.budgetMs ?? 2000, iterations: opts.iterations ?? 5 });
  if (dst[nBytes - 1] !== src[nBytes - 1] || dst[0] !== src[0]) throw new Error('memcpy: the copy did not happen');
  return { MBs: nBytes / 1e3 / t.medianMs, bytes: nBytes, samples: t.samples };
}
