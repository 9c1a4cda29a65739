/**
 * Slow float64 references for the KvCache's budget allocation and merging
 * (native/kv/kv_plan.cpp, kv_cache_compress.cpp). Rows are number[] of
 * length headDim; a head is a list of rows.
 */

/** PyramidKV layer budget (kvpress PyramidKVPress.get_layer_budget). */
export function refPyramidKeep(n: number, target: number, window: number, beta: number, layer: number, nLayers: number): number {
  if (nLayers < 2 || target >= n) return Math.min(target, n);
  let minNum = target / beta;
  let maxNum = 2 * target - minNum;
  if (maxNum >= n - window) {
    maxNum = n - window;
    minNum = 2 * target - maxNum;
  }
  if (!(n >= maxNum && maxNum >= minNum && minNum >= window)) return target;
  const steps = (maxNum - minNum) / (nLayers - 1);
  // C's nearbyint rounds half to even.
  const x = maxNum - layer * steps;
  const r = Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
  return Math.min(Math.max(r, 1), n);
}

/** AdaKV per-head counts (kvpress AdaKVPress): protect top floor(alpha*keep) per head, then global top. */
export function refAdaKvCounts(scores: number[][], keep: number[], alpha: number): number[] {
  const items: { s: number; h: number; r: number }[] = [];
  let budget = 0;
  scores.forEach((row, h) => {
    const safe = Math.min(Math.floor(keep[h]! * alpha), row.length);
    budget += keep[h]!;
    const order = row.map((_, r) => r).sort((a, b) => (row[b]! - row[a]!) || a - b);
    const prot = new Set(order.slice(0, safe));
    row.forEach((s, r) => items.push({ s: prot.has(r) ? Number.MAX_VALUE : s, h, r }));
  });
  items.sort((a, b) => (b.s - a.s) || a.h - b.h || a.r - b.r);
  const counts = scores.map(() => 0);
  for (const it of items.slice(0, Math.min(budget, items.length))) counts[it.h]! += 1;
  return counts;
}

/** Top-keep rows of one head, ascending (higher score first, earlier row on ties). */
export function refTopRows(scores: ArrayLike<number>, keep: number): number[] {
  const order = Array.from({ length: scores.length }, (_, r) => r);
  order.sort((a, b) => (scores[b]! === scores[a]! ? a - b : scores[b]! > scores[a]! ? 1 : -1));
  return order.slice(0, keep).sort((a, b) => a - b);
}

export interface RefHead {
  k: number[][];
  v: number[][];
  pos: number[];
  count: number[];
}

/**
 * Keeps `kept` rows (ascending); each evicted row with a target merges into
 * it: k, v become count-weighted means. targets[e] indexes `kept`.
 */
export function refMerge(head: RefHead, kept: number[], evicted: number[], targets: number[]): RefHead {
  const k = head.k.map((r, i) => r.map((x) => x * head.count[i]!));
  const v = head.v.map((r, i) => r.map((x) => x * head.count[i]!));
  const w = head.count.slice();
  evicted.forEach((e, i) => {
    const t = targets[i]!;
    if (t < 0) return;
    const dst = kept[t]!;
    for (let c = 0; c < k[dst]!.length; c++) {
      k[dst]![c]! += head.count[e]! * head.k[e]![c]!;
      v[dst]![c]! += head.count[e]! * head.v[e]![c]!;
    }
    w[dst]! += head.count[e]!;
  });
  return {
    k: kept.map((r) => k[r]!.map((x) => x / w[r]!)),
    v: kept.map((r) => v[r]!.map((x) => x / w[r]!)),
    pos: kept.map((r) => head.pos[r]!),
    count: kept.map((r) => w[r]!),
  };
}

/** Merge targets: the kept row of highest cosine similarity of keys (first on ties). */
export function refNearest(k: number[][], kept: number[], evicted: number[]): number[] {
  const norm = (r: number[]) => Math.sqrt(r.reduce((s, x) => s + x * x, 0));
  return evicted.map((e) => {
    let best = -Infinity;
    let arg = 0;
    kept.forEach((j, t) => {
      const n = norm(k[j]!);
      const dot = k[e]!.reduce((s, x, c) => s + x * k[j]![c]!, 0);
      const cos = n > 0 ? dot / n : 0;
      if (cos > best + 1e-9) {
        best = cos;
        arg = t;
      }
    });
    return arg;
  });
}

/** RazorAttention on a non-retrieval head: [kept rows, evicted rows, compensation slot]. */
export function refRazor(n: number, keep: number, sinks: number, recent: number): { kept: number[]; evicted: number[]; slot: number } {
  if (recent <= 0) recent = Math.max(0, keep - sinks - 1);
  sinks = Math.min(sinks, n);
  if (sinks + recent + 1 >= n) return { kept: Array.from({ length: n }, (_, r) => r), evicted: [], slot: -1 };
  const kept: number[] = [];
  for (let r = 0; r < sinks; r++) kept.push(r);
  kept.push(sinks);
  const evicted: number[] = [];
  for (let r = sinks + 1; r < n - recent; r++) evicted.push(r);
  for (let r = n - recent; r < n; r++) kept.push(r);
  return { kept, evicted, slot: sinks };
}
