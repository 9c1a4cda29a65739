/**
 * Slow float64 reference of batched OMP (native/text/omp.h), written from the
 * definition: explicit residuals, a modified Gram-Schmidt basis of the picked
 * atoms (re-orthogonalised twice), coefficients from R c = Q^T t. Same
 * picking and stopping rules as the kernel, in float64.
 */
export interface RefOmp {
  indices: number[][];
  coeffs: number[][];
}

export function referenceOmp(atoms: Float32Array, targets: Float32Array, dim: number, k: number): RefOmp {
  const nA = dim ? atoms.length / dim : 0;
  const nT = dim ? targets.length / dim : 0;
  const row = (m: Float32Array, i: number): number[] => Array.from(m.subarray(i * dim, (i + 1) * dim));
  const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const A = Array.from({ length: nA }, (_, i) => row(atoms, i));
  const norm2 = A.map((a) => dot(a, a));
  const maxNorm2 = Math.max(0, ...norm2);
  const out: RefOmp = { indices: [], coeffs: [] };
  for (let t = 0; t < nT; t++) {
    const x = row(targets, t);
    const tn2 = dot(x, x);
    const Q: number[][] = [];
    const R: number[][] = []; // R[i][j], i <= j
    const picked: number[] = [];
    const masked = new Set<number>();
    let r = x.slice();
    const floor = 1e-5 * Math.sqrt(tn2 * maxNorm2);
    while (tn2 > 0 && picked.length < k) {
      let best = -1;
      let bestV = -1;
      for (let j = 0; j < nA; j++) {
        if (masked.has(j)) continue;
        const v = Math.abs(dot(r, A[j]!));
        if (v > bestV) { bestV = v; best = j; }
      }
      if (best < 0 || !(bestV > floor)) break;
      masked.add(best);
      // Orthogonalise the new atom against Q (twice).
      let q = A[best]!.slice();
      const proj = new Array<number>(Q.length).fill(0);
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < Q.length; i++) {
          const p = dot(Q[i]!, q);
          proj[i] = proj[i]! + p;
          q = q.map((v, d) => v - p * Q[i]![d]!);
        }
      }
      const d2 = dot(q, q);
      if (!(norm2[best]! > 0) || !(d2 > 1e-4 * norm2[best]!)) continue; // dependent: skipped
      const nq = Math.sqrt(d2);
      Q.push(q.map((v) => v / nq));
      const c = picked.length;
      for (let i = 0; i < c; i++) { R[i] ??= []; R[i]![c] = proj[i]!; }
      R[c] = []; R[c]![c] = nq;
      picked.push(best);
      const qt = Q.map((qi) => dot(qi, x));
      r = x.map((v, d) => v - qt.reduce((s, a, i) => s + a * Q[i]![d]!, 0));
      if (dot(r, r) <= 1e-10 * tn2) break;
    }
    const qt = Q.map((qi) => dot(qi, x));
    const c = new Array<number>(picked.length).fill(0);
    for (let i = picked.length - 1; i >= 0; i--) {
      let v = qt[i]!;
      for (let m = i + 1; m < picked.length; m++) v -= R[i]![m]! * c[m]!;
      c[i] = v / R[i]![i]!;
    }
    out.indices.push(picked);
    out.coeffs.push(c);
  }
  return out;
}
