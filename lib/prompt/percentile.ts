/**
 * numpy-compatible percentile (`np.percentile(a, q)`, method 'linear', the
 * default), computed with quickselect instead of a sort: O(n) expected.
 *
 * numpy: quantile = q / 100; virtual index h = quantile * (n - 1);
 * lo = floor(h), hi = min(lo + 1, n - 1), t = h - lo;
 * result = lerp(sorted[lo], sorted[hi], t) with numpy's `_lerp`
 * (a + (b - a) * t, or b - (b - a) * (1 - t) when t >= 0.5), so the
 * float64 result matches numpy bit for bit on finite inputs.
 */
import { rangeError, typeError } from '../errors.js';

/** The k-th smallest (0-based) of a[0..n), reordering a[0..n) in place (Hoare partition, median of three). */
export function selectInPlace(a: Float64Array, n: number, k: number): number {
  let left = 0;
  let right = n - 1;
  while (right > left) {
    // Median of three as the pivot keeps sorted and constant runs linear.
    const mid = (left + right) >>> 1;
    let x = a[left]!, y = a[mid]!, z = a[right]!;
    if (x > y) [x, y] = [y, x];
    if (y > z) [y, z] = [z, y];
    if (x > y) [x, y] = [y, x];
    const pivot = y;
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    // Now a[left..j] <= pivot <= a[i..right], and a[j+1..i-1] == pivot.
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return a[k]!;
  }
  return a[k]!;
}

/**
 * numpy's linear percentile of the first `n` values of `a`, reordering them
 * (a scratch array). `q` in [0, 100]; n >= 1; the values must be finite.
 */
export function percentileInPlace(a: Float64Array, n: number, q: number): number {
  const quantile = q / 100;
  const h = quantile * (n - 1);
  const lo = Math.floor(h);
  const t = h - lo;
  const va = selectInPlace(a, n, lo);
  if (lo + 1 >= n) return va;
  // After selection a[lo+1..n) holds the values >= the lo-th: its minimum is the next order statistic.
  let vb = Infinity;
  for (let i = lo + 1; i < n; i++) if (a[i]! < vb) vb = a[i]!;
  const diff = vb - va;
  return t >= 0.5 ? vb - diff * (1 - t) : va + diff * t;
}

/**
 * numpy's `np.percentile(values, q)` (method 'linear') of finite numbers.
 * values: a non-empty array of finite numbers (not modified); q: in [0, 100].
 */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw typeError('values', 'an array of numbers', values);
  }
  if (typeof q !== 'number') throw typeError('q', 'a number in [0, 100]', q);
  if (!(q >= 0 && q <= 100)) throw rangeError('q', 'a number in [0, 100]', q);
  const n = values.length;
  if (n === 0) throw rangeError('values', 'a non-empty array', values);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw rangeError(`values[${i}]`, 'a finite number', v);
    a[i] = v;
  }
  return percentileInPlace(a, n, q);
}
