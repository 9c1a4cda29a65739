// Float64 reference of the token-level Kneser-Ney formula (native/text/token_kn.h),
// written from the formula with Maps, independent of the native sort-based code.
export interface KnRef {
  next(context: readonly number[]): Float64Array;
  discounts: number[][]; // [order][6]
}

function discounts(n: number[]): number[] {
  const out: number[] = [];
  let prev = 0.5;
  for (let r = 1; r <= 3; r++) {
    let v: number;
    if (n[1]! + 2 * n[2]! === 0 || n[r] === 0) v = r === 1 ? 0.5 : prev;
    else {
      const y = n[1]! / (n[1]! + 2 * n[2]!);
      v = r - ((r + 1) * y * n[r + 1]!) / n[r]!;
    }
    v = Math.min(Math.max(v, 0), r);
    out.push(v);
    prev = v;
  }
  return out;
}

export function knReference(tokens: readonly number[], vocab: number, order: number): KnRef {
  // per order k: context key -> (sym -> { raw, preds })
  const tables: Map<string, Map<number, { raw: number; preds: Set<number> }>>[] = [];
  const disc: number[][] = [];
  for (let k = 0; k < order; k++) {
    const t = new Map<string, Map<number, { raw: number; preds: Set<number> }>>();
    for (let i = k; i < tokens.length; i++) {
      const key = tokens.slice(i - k, i).join(',');
      let m = t.get(key);
      if (!m) t.set(key, (m = new Map()));
      let e = m.get(tokens[i]!);
      if (!e) m.set(tokens[i]!, (e = { raw: 0, preds: new Set() }));
      e.raw++;
      if (i >= k + 1) e.preds.add(tokens[i - k - 1]!);
    }
    const nr = [0, 0, 0, 0, 0], nc = [0, 0, 0, 0, 0];
    for (const m of t.values()) for (const e of m.values()) {
      nr[Math.min(e.raw, 4)]!++;
      if (e.preds.size > 0) nc[Math.min(e.preds.size, 4)]!++;
    }
    tables.push(t);
    disc.push([...discounts(nr), ...discounts(nc)]);
  }
  const next = (context: readonly number[]): Float64Array => {
    const top = Math.min(context.length, order - 1);
    const h = context.slice(context.length - top);
    // recursive definition, lowest order first
    let p = new Float64Array(vocab).fill(1 / vocab);
    for (let k = 0; k <= top; k++) {
      const m = tables[k]!.get(h.slice(top - k).join(','));
      if (!m) continue;
      const raw = k === top;
      const d = disc[k]!.slice(raw ? 0 : 3, raw ? 3 : 6);
      let total = 0, gam = 0;
      for (const e of m.values()) {
        const c = raw ? e.raw : e.preds.size;
        total += c;
        if (c > 0) gam += d[Math.min(c, 3) - 1]!;
      }
      if (total === 0) continue;
      const q = new Float64Array(vocab);
      for (let w = 0; w < vocab; w++) q[w] = (gam / total) * p[w]!;
      for (const [w, e] of m) {
        const c = raw ? e.raw : e.preds.size;
        if (c > 0) q[w] = q[w]! + Math.max(c - d[Math.min(c, 3) - 1]!, 0) / total;
      }
      p = q;
    }
    const floor = 2 ** -20;
    for (let w = 0; w < vocab; w++) p[w] = (1 - floor) * p[w]! + floor / vocab;
    return p;
  };
  return { next, discounts: disc };
}
