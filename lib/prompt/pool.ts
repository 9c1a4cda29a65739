/**
 * SpecPC's selection, the pure part (furiosa-ai/draft-based-approx-llm,
 * draft_approx_llm/specpc/specpc.py specpc_select_input_token_indices):
 *
 *   scores f32|f64 [n]  one draft-attention score per prompt token
 *   1. centred 1-D pooling of width kernelSize: zero padding of
 *      floor((k-1)/2) on the left and the rest on the right, then max, or the
 *      sum / k ('avg': padding counts, as F.pad + avg_pool1d);
 *   2. the top `capacity` tokens by pooled score (ties: lower index first;
 *      torch.topk leaves ties unspecified), or every token in order when
 *      capacity >= n;
 *   3. each widened by neighborTokens offsets -floor((m-1)/2) .. m-1-floor((m-1)/2),
 *      ordered by distance (ties: the left one first, a stable sort), clamped
 *      to [0, n-1];
 *   4. the last windowSize tokens first, then that list; duplicates dropped
 *      keeping the first occurrence; cut to capacity; sorted ascending.
 *
 * windowSize larger than n is clamped to n (the official code raises).
 * Arithmetic in float64; exact against test/reference/specpc.ts.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';

export type PoolType = 'max' | 'avg';

export interface SpecPcPoolOptions {
  /** Pooling width (default 32, the paper's configs for Llama). 1: no pooling. */
  kernelSize?: number;
  /** Default 'max'. */
  poolType?: PoolType;
}

export interface SpecPcSelectOptions extends SpecPcPoolOptions {
  /** Tokens to keep (max_capacity_prompt), >= 1. */
  capacity: number;
  /** The last windowSize tokens are always kept (default 64). */
  windowSize?: number;
  /** Neighbours added around each top token (default 32). 0: none. */
  neighborTokens?: number;
}

export const SPECPC_SELECT_DEFAULTS = { kernelSize: 32, poolType: 'max', windowSize: 64, neighborTokens: 32 } as const;

function checkScores(arg: string, scores: unknown): Float32Array | Float64Array {
  if (!(scores instanceof Float32Array) && !(scores instanceof Float64Array)) throw typeError(arg, 'a Float32Array or Float64Array', scores);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) throw rangeError(`${arg}[${i}]`, 'a finite number', scores[i]);
  }
  return scores;
}

function resolvePool(o: SpecPcPoolOptions, prefix: string): { kernel: number; pool: PoolType } {
  const kernel = o.kernelSize === undefined ? 32 : checkInteger(`${prefix}.kernelSize`, o.kernelSize, 1, 1 << 20);
  const pool = o.poolType === undefined ? 'max' : o.poolType;
  if (pool !== 'max' && pool !== 'avg') throw rangeError(`${prefix}.poolType`, "'max' or 'avg'", o.poolType);
  return { kernel, pool };
}

function poolChecked(s: ArrayLike<number>, kernel: number, pool: PoolType): Float64Array {
  const n = s.length;
  const left = (kernel - 1) >> 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Window [i - left, i - left + kernel) over the zero-padded scores.
    const a = i - left;
    const b = a + kernel;
    let acc = pool === 'max' ? (a < 0 || b > n ? 0 : -Infinity) : 0;
    for (let j = Math.max(0, a); j < Math.min(n, b); j++) {
      const v = s[j]!;
      if (pool === 'max') {
        if (v > acc) acc = v;
      } else acc += v;
    }
    out[i] = pool === 'max' ? acc : acc / kernel;
  }
  return out;
}

/** Centred pooling of scores (see the module comment): f64 [n]. */
export function specpcPool(scores: Float32Array | Float64Array, options: SpecPcPoolOptions = {}): Float64Array {
  const s = checkScores('scores', scores);
  const { kernel, pool } = resolvePool(checkOptions('options', options, ['kernelSize', 'poolType']) as SpecPcPoolOptions, 'options');
  return poolChecked(s, kernel, pool);
}

/** Neighbour offsets ordered by distance, left first on ties. */
export function neighborOffsets(m: number): number[] {
  const lo = 0 - ((m - 1) >> 1);
  const offs: number[] = [];
  for (let d = lo; d <= m - 1 - ((m - 1) >> 1); d++) offs.push(d);
  return offs.sort((x, y) => Math.abs(x) - Math.abs(y) || x - y);
}

/**
 * SpecPC's selected token indices (i32, ascending, at most capacity of them;
 * see the module comment). Scores must be finite.
 */
export function specpcSelect(scores: Float32Array | Float64Array, options: SpecPcSelectOptions): Int32Array {
  const s = checkScores('scores', scores);
  if (options === undefined) throw typeError('options', '{ capacity, windowSize?, kernelSize?, poolType?, neighborTokens? }', options);
  const o = checkOptions('options', options, ['capacity', 'windowSize', 'kernelSize', 'poolType', 'neighborTokens']) as Partial<SpecPcSelectOptions>;
  const capacity = checkInteger('options.capacity', o.capacity, 1);
  const windowSize = o.windowSize === undefined ? 64 : checkInteger('options.windowSize', o.windowSize, 0);
  const neighbors = o.neighborTokens === undefined ? 32 : checkInteger('options.neighborTokens', o.neighborTokens, 0, 1 << 20);
  const { kernel, pool } = resolvePool(o, 'options');
  const n = s.length;
  if (n === 0) return new Int32Array(0);
  const pooled = poolChecked(s, kernel, pool);
  let order: number[];
  if (capacity < n) {
    order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => pooled[b]! - pooled[a]! || a - b);
    order.length = capacity;
  } else order = Array.from({ length: n }, (_, i) => i);
  const w = Math.min(windowSize, n);
  const seen = new Uint8Array(n);
  const picked: number[] = [];
  const take = (i: number) => {
    if (!seen[i]) {
      seen[i] = 1;
      picked.push(i);
    }
  };
  for (let i = n - w; i < n; i++) take(i);
  const offs = neighbors > 0 ? neighborOffsets(neighbors) : [0];
  for (const i of order) {
    if (picked.length >= capacity) break; // the rest would be cut
    for (const d of offs) take(Math.min(n - 1, Math.max(0, i + d)));
  }
  const out = Int32Array.from(picked.slice(0, capacity));
  return out.sort();
}
