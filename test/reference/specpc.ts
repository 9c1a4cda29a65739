// Float64 reference of SpecPC's pooling and selection, written from the
// official code (furiosa-ai/draft-based-approx-llm specpc.py
// specpc_select_input_token_indices) step by step, independently of
// lib/prompt/pool.ts: explicit zero padding, then pooling over the padded
// array; a full stable sort for topk; the neighbour grid built as the
// official [k, m] matrix then flattened; a first-occurrence unique.

export function refPool(scores: ArrayLike<number>, kernel: number, type: 'max' | 'avg'): number[] {
  const left = Math.floor((kernel - 1) / 2);
  const right = kernel - 1 - left;
  const padded: number[] = [...new Array<number>(left).fill(0), ...Array.from(scores, Number), ...new Array<number>(right).fill(0)];
  const out: number[] = [];
  for (let i = 0; i + kernel <= padded.length; i++) {
    const win = padded.slice(i, i + kernel);
    out.push(type === 'max' ? Math.max(...win) : win.reduce((a, b) => a + b, 0) / kernel);
  }
  return out;
}

function firstUnique(xs: number[]): number[] {
  const out: number[] = [];
  for (const x of xs) if (!out.includes(x)) out.push(x);
  return out;
}

export interface RefSelectOptions {
  capacity: number;
  windowSize: number;
  kernelSize: number;
  poolType: 'max' | 'avg';
  neighborTokens: number;
}

export function refSelect(scores: ArrayLike<number>, o: RefSelectOptions): number[] {
  const n = scores.length;
  if (n === 0) return [];
  const pooled = refPool(scores, o.kernelSize, o.poolType);
  let ind: number[];
  if (o.capacity < n) {
    const pairs = pooled.map((v, i) => [v, i] as const);
    // Stable sort by value descending: equal values keep index order.
    const sorted = [...pairs].sort((x, y) => (y[0] > x[0] ? 1 : y[0] < x[0] ? -1 : 0));
    ind = sorted.slice(0, o.capacity).map((p) => p[1]);
  } else ind = pooled.map((_, i) => i);
  if (o.neighborTokens > 0) {
    const m = o.neighborTokens;
    const adj: number[] = [];
    for (let d = -Math.floor((m - 1) / 2); d < m - 1 - Math.floor((m - 1) / 2) + 1; d++) adj.push(d);
    const byDistance = adj.map((d, k) => [Math.abs(d), k, d] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((t) => t[2]);
    const grid: number[] = [];
    for (const i of ind) for (const d of byDistance) grid.push(Math.min(n - 1, Math.max(0, i + d)));
    ind = firstUnique(grid);
  }
  const w = Math.min(o.windowSize, n);
  const wnd: number[] = [];
  for (let i = n - w; i < n; i++) wnd.push(i);
  return firstUnique([...wnd, ...ind]).slice(0, o.capacity).sort((a, b) => a - b);
}

/**
 * SpecPC's aggregation for one prefill, float64, from raw q/k:
 * q [nHeads, n, d], k [nKvHeads, n, d] per layer (after RoPE); the last w
 * rows, causal, weights r/(w-1); max (or sum) over heads and rows, then
 * over layers >= start.
 */
export function refAggregate(
  layers: { q: Float32Array; k: Float32Array }[], n: number, nHeads: number, nKvHeads: number, d: number,
  w: number, start: number, weighted: boolean, sum: boolean,
): number[] {
  const out = new Array<number>(n).fill(sum ? 0 : -Infinity);
  for (let l = start; l < layers.length; l++) {
    const { q, k } = layers[l]!;
    const layer = new Array<number>(n).fill(sum ? 0 : -Infinity);
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      for (let r = 0; r < w; r++) {
        const pos = n - w + r;
        const logits: number[] = [];
        for (let j = 0; j <= pos; j++) {
          let dot = 0;
          for (let x = 0; x < d; x++) dot += q[(h * n + pos) * d + x]! * k[(kvh * n + j) * d + x]!;
          logits.push(dot / Math.sqrt(d));
        }
        const mx = Math.max(...logits);
        const e = logits.map((v) => Math.exp(v - mx));
        const z = e.reduce((a, b) => a + b, 0);
        const wt = weighted && w > 1 ? r / (w - 1) : 1;
        for (let j = 0; j < n; j++) {
          const p = j <= pos ? (e[j]! / z) * wt : 0;
          layer[j] = sum ? layer[j]! + p : Math.max(layer[j]!, p);
        }
      }
    }
    for (let j = 0; j < n; j++) out[j] = sum ? out[j]! + layer[j]! : Math.max(out[j]!, layer[j]!);
  }
  return out;
}
