/**
 * Slow float64 reference of the byte model's interpolated Kneser-Ney
 * (native/coding/kn_model.h), straight from the n-gram counts of a text.
 *
 * Counts: order k (context = the k bytes before byte i) takes raw counts from
 * every position i >= k, and continuation counts (the number of distinct bytes
 * x with x + context + b in the text) from positions i >= k + 1. Discounts
 * D1, D2, D3+ per order and per kind come from the count-of-counts n1..n4
 * (Chen & Goodman), rounded to 1/65536 as the file stores them. For a query
 * with L context bytes, order L uses raw counts and orders below it
 * continuation counts; an unseen context, or one whose counts are all zero,
 * passes its weight down unchanged; order -1 is uniform.
 */

type Counts = Map<string, Map<number, number>>; // context (latin1 key) -> byte -> count

export interface KnReference {
  maxOrder: number;
  raw: Counts[]; // [order]
  cont: Counts[]; // [order] (order maxOrder unused)
  dRaw: number[][]; // [order][D1, D2, D3+]
  dCont: number[][];
}

function key(bytes: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function bump(m: Counts, ctx: string, b: number, by = 1): void {
  let row = m.get(ctx);
  if (!row) m.set(ctx, (row = new Map()));
  row.set(b, (row.get(b) ?? 0) + by);
}

/** Chen & Goodman's modified discounts from count-of-counts, as 16.16 fixed point values / 65536. */
export function referenceDiscounts(counts: Counts): number[] {
  const n = [0, 0, 0, 0, 0];
  for (const row of counts.values()) {
    for (const c of row.values()) if (c >= 1 && c <= 4) n[c]!++;
  }
  const out: number[] = [];
  let prev = 0.5;
  for (let r = 1; r <= 3; r++) {
    let v: number;
    if (n[1]! + 2 * n[2]! === 0 || n[r] === 0) {
      v = r === 1 ? 0.5 : prev;
    } else {
      const y = n[1]! / (n[1]! + 2 * n[2]!);
      v = r - ((r + 1) * y * n[r + 1]!) / n[r]!;
    }
    v = Math.min(Math.max(v, 0), r);
    out.push(Math.min(Math.floor(v * 65536 + 0.5), r * 65536) / 65536);
    prev = v;
  }
  return out;
}

export function buildKnReference(text: Uint8Array, maxOrder: number): KnReference {
  const raw: Counts[] = [];
  const cont: Counts[] = [];
  for (let k = 0; k <= maxOrder; k++) {
    const r: Counts = new Map();
    const seen = new Set<string>(); // distinct (x, context, b)
    const c: Counts = new Map();
    for (let i = k; i < text.length; i++) {
      const ctx = key(text, i - k, i);
      bump(r, ctx, text[i]!);
      if (k < maxOrder && i >= k + 1) {
        const triple = `${text[i - k - 1]}|${ctx}|${text[i]}`;
        if (!seen.has(triple)) {
          seen.add(triple);
          bump(c, ctx, text[i]!);
        }
      }
    }
    raw.push(r);
    cont.push(c);
  }
  return {
    maxOrder,
    raw,
    cont,
    dRaw: raw.map(referenceDiscounts),
    dCont: cont.map(referenceDiscounts),
  };
}

/** P(next byte | the last min(len, maxOrder) bytes of context): Float64Array [256]. */
export function referenceProbabilities(ref: KnReference, context: Uint8Array): Float64Array {
  const len = Math.min(context.length, ref.maxOrder);
  const ctx = context.subarray(context.length - len);
  let p = new Float64Array(256).fill(1 / 256);
  // The model stops at the first order whose context it lacks (longer ones are lacking too).
  let depth = 0;
  for (let k = 1; k <= len; k++) {
    if (!ref.raw[k]!.has(key(ctx, len - k, len))) break;
    depth = k;
  }
  for (let k = 0; k <= depth; k++) {
    const top = k === len;
    const row = (top ? ref.raw[k]! : ref.cont[k]!).get(key(ctx, len - k, len));
    if (!row) continue;
    let total = 0;
    for (const c of row.values()) total += c;
    if (total === 0) continue;
    const d = top ? ref.dRaw[k]! : ref.dCont[k]!;
    let g = 0;
    const next = new Float64Array(256);
    for (const [b, c] of row) {
      const disc = d[Math.min(c, 3) - 1]!;
      next[b] = Math.max(c - disc, 0) / total;
      g += Math.min(disc, c);
    }
    const gamma = g / total;
    for (let b = 0; b < 256; b++) next[b]! += gamma * p[b]!;
    p = next;
  }
  return p;
}
