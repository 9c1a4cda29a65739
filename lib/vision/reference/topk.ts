// JS reference of the shared top-k rule (native/reduce/topk.h): the k
// largest, ties to the lower index, NaN last; returned ascending.
export function topkReference(s: ArrayLike<number>, k: number): Int32Array {
  const idx = Array.from({ length: s.length }, (_, i) => i);
  const key = (i: number): number => (Number.isNaN(s[i]!) ? -Infinity : s[i]!);
  idx.sort((a, b) => {
    const na = Number.isNaN(s[a]!), nb = Number.isNaN(s[b]!);
    if (na !== nb) return na ? 1 : -1;
    return key(b) - key(a) || a - b;
  });
  return Int32Array.from(idx.slice(0, Math.max(0, Math.min(k, s.length))).sort((a, b) => a - b));
}
