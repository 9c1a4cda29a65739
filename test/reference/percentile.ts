// numpy's linear-interpolation percentile by sorting, written independently
// of lib/prompt/percentile.ts (quickselect). numpy's _lerp: from the upper
// value when the fraction is >= 0.5, from the lower one below.
export function refPercentile(values: number[], q: number): number {
  const a = [...values].sort((x, y) => x - y);
  const h = (q / 100) * (a.length - 1);
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, a.length - 1);
  const t = h - lo;
  const d = a[hi]! - a[lo]!;
  return t >= 0.5 ? a[hi]! - d * (1 - t) : a[lo]! + d * t;
}
