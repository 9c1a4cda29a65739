// Embedding transplantation: give a model (the "base", whose embeddings are
// indexed by the OLD tokenizer's ids) the vocabulary of another tokenizer
// (the NEW one, the "donor" in mergekit's words) without training.
//
// Tokens whose bytes are identical in both vocabularies (the anchors) are
// copied. Every other new token is approximated by one of:
//  - 'omp': mergekit-tokensurgeon's default (arcee-ai/mergekit,
//    mergekit/scripts/tokensurgeon.py compute_new_embeddings with
//    mergekit/tokensurgeon/omp.py batch_omp): the new token's embedding in a
//    donor model's space is written as a k-sparse combination of the
//    anchors' donor embeddings (k = 64), and the same coefficients are
//    applied to the anchors' base embeddings.
//  - 'tokenadapt': TokenAdapt's hybrid (Tinycompany-AI/tokenadapt,
//    src/heuristics.py calculate_local_embedding / calculate_global_embedding,
//    defaults of src/transplant.py): 0.7 local (the old tokenizer's pieces of
//    the new token's bytes, weighted by a softmax over cosine similarity and
//    relative length with temperature 0.3) + 0.3 global (the 3 nearest old
//    tokens by cosine of an external embedder, softmax of similarity /
//    temperature, threshold 0). The embedder is a caller's callback.
//  - 'mean-of-pieces': the mean of the base embeddings of the old
//    tokenizer's pieces (mergekit's `subword` method, `mean`).
// Differences from the originals are listed in docs/tokenizer-transplant.md.
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { applyOmpCodes, checkF32Rows, ompBatch, ompBatchAsync, OMP_DEFAULT_K, OMP_MAX_K, type OmpResult } from './omp.js';
import type { TokenVocab } from './types.js';

export type TransplantMethod = 'omp' | 'tokenadapt' | 'mean-of-pieces';
export const TRANSPLANT_METHODS: readonly TransplantMethod[] = Object.freeze(['omp', 'tokenadapt', 'mean-of-pieces'] as TransplantMethod[]);

/** An external embedder (TokenAdapt): a vector of `embedDim` floats for a byte string, or null when it has none. */
export type TokenEmbedder = (bytes: Uint8Array) => Float32Array | null;

export interface TransplantOptions {
  /** The base model's tokenizer: rows of `base` are its ids. */
  oldVocab: TokenVocab;
  /** The tokenizer to transplant: rows of the result are its ids. */
  newVocab: TokenVocab;
  /** The base model's embeddings, f32 [oldVocab.size, baseDim]. */
  base: Float32Array;
  baseDim: number;
  method: TransplantMethod;
  /** 'omp': a donor model's embeddings for the NEW vocabulary, f32 [newVocab.size, donorDim]. */
  donor?: Float32Array;
  donorDim?: number;
  /** 'omp': atoms per token, [1, 1024]. Default 64. */
  k?: number;
  /** 'omp': bytes of cached Gram columns. Default 1 GiB. */
  gramCacheBytes?: number;
  /** 'tokenadapt': the embedder of byte strings, and its width. */
  embed?: TokenEmbedder;
  embedDim?: number;
  /** 'tokenadapt': softmax temperature (default 0.3), neighbours (default 3), global weight (default 0.3), similarity threshold (default 0). */
  temperature?: number;
  topK?: number;
  globalWeight?: number;
  threshold?: number;
  /**
   * New ids to approximate even though the old vocabulary has their bytes
   * (a held-out evaluation): their old twins are removed from the anchors,
   * the pieces and the neighbours. Default none.
   */
  treatAsNew?: ArrayLike<number>;
  /** New ids to approximate; default every used new id that is not an anchor. Others that are not anchors are left 0. */
  targets?: ArrayLike<number>;
  /** The old tokenizer's pieces of a byte string (old ids). Default oldVocab.encodeBytes. */
  pieces?: (bytes: Uint8Array) => number[];
  /** Called with (done, total) while the OMP codes are computed (async form only). */
  onProgress?: (done: number, total: number) => void;
}

export interface TransplantResult {
  /** f32 [newVocab.size, baseDim]. */
  embeddings: Float32Array;
  /** New ids copied from identical old tokens, and the old ids they came from. */
  anchorsNew: Int32Array;
  anchorsOld: Int32Array;
  /** New ids approximated (in order), and how many of them fell back to mean-of-pieces (tokenadapt: no heuristic applied; omp: zero donor row). */
  approximated: Int32Array;
  fallbacks: number;
}

const OPTION_NAMES = [
  'oldVocab', 'newVocab', 'base', 'baseDim', 'method', 'donor', 'donorDim', 'k', 'gramCacheBytes', 'embed', 'embedDim',
  'temperature', 'topK', 'globalWeight', 'threshold', 'treatAsNew', 'targets', 'pieces', 'onProgress',
] as const;

interface Plan {
  o: TransplantOptions;
  baseDim: number;
  anchorsNew: Int32Array;
  anchorsOld: Int32Array;
  approximated: Int32Array;
  excludedOld: Set<number>;  // old twins of treatAsNew ids
  pieces: (bytes: Uint8Array) => number[];
  out: Float32Array;
}

function checkVocab(arg: string, v: unknown): TokenVocab {
  const ok = v !== null && typeof v === 'object' && typeof (v as TokenVocab).tokenBytes === 'function' &&
    typeof (v as TokenVocab).idOf === 'function' && Number.isInteger((v as TokenVocab).size);
  if (!ok) throw typeError(arg, 'a TokenVocab (loadVocab)', v);
  return v as TokenVocab;
}

function checkIds(arg: string, ids: unknown, size: number): number[] {
  if (ids === undefined) return [];
  if (ids === null || typeof ids !== 'object' || typeof (ids as ArrayLike<number>).length !== 'number') throw typeError(arg, 'an array of token ids', ids);
  const a = Array.from(ids as ArrayLike<number>);
  a.forEach((id, i) => checkInteger(`${arg}[${i}]`, id, 0, size - 1));
  return a;
}

/** Validates the options and finds the anchors (identical bytes in both vocabularies). */
function plan(options: TransplantOptions): Plan {
  const o = checkOptions('options', options, OPTION_NAMES) as unknown as TransplantOptions;
  const oldVocab = checkVocab('options.oldVocab', o.oldVocab);
  const newVocab = checkVocab('options.newVocab', o.newVocab);
  if (!TRANSPLANT_METHODS.includes(o.method)) throw rangeError('options.method', `one of ${TRANSPLANT_METHODS.join(', ')}`, o.method);
  const baseDim = checkInteger('options.baseDim', o.baseDim, 1, 1 << 24);
  const baseRows = checkF32Rows('options.base', o.base, baseDim);
  if (baseRows !== oldVocab.size) throw rangeError('options.base', `oldVocab.size = ${oldVocab.size} rows of ${baseDim}`, `${baseRows} rows`);
  if (o.method === 'omp') {
    const dd = checkInteger('options.donorDim', o.donorDim, 1, 1 << 24);
    const rows = checkF32Rows('options.donor', o.donor, dd);
    if (rows !== newVocab.size) throw rangeError('options.donor', `newVocab.size = ${newVocab.size} rows of ${dd}`, `${rows} rows`);
    if (o.k !== undefined) checkInteger('options.k', o.k, 1, OMP_MAX_K);
    if (o.gramCacheBytes !== undefined && !(checkNumber('options.gramCacheBytes', o.gramCacheBytes) >= 0)) {
      throw rangeError('options.gramCacheBytes', 'a number >= 0', o.gramCacheBytes);
    }
  }
  if (o.method === 'tokenadapt') {
    if (typeof o.embed !== 'function') throw typeError('options.embed', 'a function (bytes) => Float32Array | null', o.embed);
    checkInteger('options.embedDim', o.embedDim, 1, 1 << 24);
    if (o.temperature !== undefined && !(checkNumber('options.temperature', o.temperature) > 0)) throw rangeError('options.temperature', 'a number > 0', o.temperature);
    if (o.topK !== undefined) checkInteger('options.topK', o.topK, 1, 4096);
    if (o.globalWeight !== undefined) {
      const w = checkNumber('options.globalWeight', o.globalWeight);
      if (w < 0 || w > 1) throw rangeError('options.globalWeight', 'a number in [0, 1]', w);
    }
    if (o.threshold !== undefined) checkNumber('options.threshold', o.threshold);
  }
  if (o.pieces !== undefined && typeof o.pieces !== 'function') throw typeError('options.pieces', 'a function (bytes) => old ids', o.pieces);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  const treat = new Set(checkIds('options.treatAsNew', o.treatAsNew, newVocab.size));
  const targetList = o.targets === undefined ? undefined : checkIds('options.targets', o.targets, newVocab.size);

  const anchorsNew: number[] = [];
  const anchorsOld: number[] = [];
  const excludedOld = new Set<number>();
  const notAnchor: number[] = [];
  for (let id = 0; id < newVocab.size; id++) {
    if (!newVocab.isUsed(id)) continue;
    const oldId = oldVocab.idOf(newVocab.tokenBytes(id));
    if (oldId >= 0 && treat.has(id)) excludedOld.add(oldId);
    if (oldId >= 0 && !treat.has(id)) {
      anchorsNew.push(id);
      anchorsOld.push(oldId);
    } else {
      notAnchor.push(id);
    }
  }
  const anchorSet = new Set(anchorsNew);
  const approximated = targetList === undefined ? notAnchor : targetList.filter((id) => !anchorSet.has(id));
  const out = new Float32Array(newVocab.size * baseDim);
  for (let i = 0; i < anchorsNew.length; i++) {
    out.set(o.base.subarray(anchorsOld[i]! * baseDim, (anchorsOld[i]! + 1) * baseDim), anchorsNew[i]! * baseDim);
  }
  const encode = (b: Uint8Array): number[] => {
    const ids = o.pieces ? o.pieces(b) : oldVocab.encodeBytes(b);
    if (!Array.isArray(ids)) throw typeError('options.pieces()', 'an array of old ids', ids);
    ids.forEach((id, i) => checkInteger(`options.pieces()[${i}]`, id, 0, oldVocab.size - 1));
    return ids;
  };
  // Pieces without the excluded old twins: an excluded piece is replaced by
  // the two-part split of its bytes with the fewest pieces (first split on
  // ties), recursively: what the old tokenizer would emit without that token,
  // up to BPE's merge order.
  const pieces = (b: Uint8Array, depth = 0): number[] => {
    const out: number[] = [];
    for (const id of encode(b)) {
      if (!excludedOld.has(id)) { out.push(id); continue; }
      const tb = oldVocab.tokenBytes(id);
      let best: number[] = [];
      for (let cut = 1; cut < tb.length && depth < 8; cut++) {
        const split = [...pieces(tb.subarray(0, cut), depth + 1), ...pieces(tb.subarray(cut), depth + 1)];
        if (best.length === 0 || split.length < best.length) best = split;
      }
      out.push(...best);
    }
    return out;
  };
  return {
    o, baseDim, anchorsNew: Int32Array.from(anchorsNew), anchorsOld: Int32Array.from(anchorsOld),
    approximated: Int32Array.from(approximated), excludedOld, pieces, out,
  };
}

/** Mean of base rows (float64 sums); false when there are none. */
function meanRows(base: Float32Array, dim: number, rows: readonly number[], out: Float32Array, at: number): boolean {
  if (rows.length === 0) return false;
  const acc = new Float64Array(dim);
  for (const r of rows) for (let d = 0; d < dim; d++) acc[d] = acc[d]! + base[r * dim + d]!;
  for (let d = 0; d < dim; d++) out[at + d] = acc[d]! / rows.length;
  return true;
}

function meanOfPieces(p: Plan): number {
  let fallbacks = 0;
  for (const id of p.approximated) {
    if (!meanRows(p.o.base, p.baseDim, p.pieces(p.o.newVocab.tokenBytes(id)), p.out, id * p.baseDim)) fallbacks++;
  }
  return fallbacks;
}

/** Gathers rows of m [*, dim] into a new f32 [ids.length, dim]. */
function gather(m: Float32Array, dim: number, ids: ArrayLike<number>): Float32Array {
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) out.set(m.subarray(ids[i]! * dim, (ids[i]! + 1) * dim), i * dim);
  return out;
}

interface OmpInputs { atoms: Float32Array; atomsOld: Int32Array; targets: Float32Array; donorDim: number; k: number }

/** Atoms: the anchors' donor rows, less the zero rows (OMP never picks a zero atom; they would only cost time). */
function ompInputs(p: Plan): OmpInputs {
  const donorDim = p.o.donorDim!;
  const donor = p.o.donor!;
  const keepNew: number[] = [];
  const keepOld: number[] = [];
  p.anchorsNew.forEach((id, i) => {
    for (let d = 0; d < donorDim; d++) {
      if (donor[id * donorDim + d] !== 0) { keepNew.push(id); keepOld.push(p.anchorsOld[i]!); return; }
    }
  });
  return {
    atoms: gather(donor, donorDim, keepNew), atomsOld: Int32Array.from(keepOld), targets: gather(donor, donorDim, p.approximated),
    donorDim, k: p.o.k ?? OMP_DEFAULT_K,
  };
}

/** Writes the OMP approximations: coefficients over the anchors' base rows; a zero code (zero donor row) falls back to mean-of-pieces. */
function ompFinish(p: Plan, inputs: OmpInputs, codes: OmpResult): number {
  const approx = applyOmpCodes(codes, gather(p.o.base, p.baseDim, inputs.atomsOld), p.baseDim);
  let fallbacks = 0;
  p.approximated.forEach((id, t) => {
    if (codes.counts[t] === 0) {  // nothing to combine: the token's pieces instead
      meanRows(p.o.base, p.baseDim, p.pieces(p.o.newVocab.tokenBytes(id)), p.out, id * p.baseDim);
      fallbacks++;
      return;
    }
    p.out.set(approx.subarray(t * p.baseDim, (t + 1) * p.baseDim), id * p.baseDim);
  });
  return fallbacks;
}

function softmax(x: readonly number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** The embedder's vector for bytes, checked; null when it has none. */
function embedChecked(p: Plan, bytes: Uint8Array): Float32Array | null {
  const v = p.o.embed!(bytes);
  if (v === null) return null;
  if (!(v instanceof Float32Array) || v.length !== p.o.embedDim) throw typeError('options.embed()', `a Float32Array of embedDim = ${p.o.embedDim} floats or null`, v);
  return v;
}

/** TokenAdapt's hybrid (see the file comment). */
function tokenAdapt(p: Plan): number {
  const o = p.o;
  const temperature = o.temperature ?? 0.3;
  const topK = o.topK ?? 3;
  const globalWeight = o.globalWeight ?? 0.3;
  const threshold = o.threshold ?? 0;
  const ed = o.embedDim!;
  const bd = p.baseDim;
  const oldVocab = o.oldVocab;
  // The global index: every used, non-excluded old token the embedder knows, L2-normalised.
  const indexIds: number[] = [];
  const vecs: Float32Array[] = [];
  if (globalWeight > 0) {
    for (let id = 0; id < oldVocab.size; id++) {
      if (!oldVocab.isUsed(id) || p.excludedOld.has(id)) continue;
      const v = embedChecked(p, oldVocab.tokenBytes(id));
      if (v === null) continue;
      let n = 0;
      for (let d = 0; d < ed; d++) n += v[d]! * v[d]!;
      if (!(n > 0)) continue;
      const u = new Float32Array(ed);
      const s = 1 / Math.sqrt(n);
      for (let d = 0; d < ed; d++) u[d] = v[d]! * s;
      indexIds.push(id);
      vecs.push(u);
    }
  }
  const index = new Float32Array(vecs.length * ed);
  vecs.forEach((v, i) => index.set(v, i * ed));
  let fallbacks = 0;
  const local = new Float64Array(bd);
  const global = new Float64Array(bd);
  for (const id of p.approximated) {
    const bytes = o.newVocab.tokenBytes(id);
    const full = embedChecked(p, bytes);
    let hasLocal = false;
    let hasGlobal = false;
    if (full !== null && globalWeight < 1) {
      // Local: the old pieces the embedder knows.
      const ids: number[] = [];
      const sims: number[] = [];
      const lens: number[] = [];
      for (const pid of p.pieces(bytes)) {
        const pb = oldVocab.tokenBytes(pid);
        const pv = embedChecked(p, pb);
        if (pv === null) continue;
        ids.push(pid);
        sims.push(cosine(full, pv));
        lens.push(bytes.length > 0 ? pb.length / bytes.length : 0);
      }
      if (ids.length > 0) {
        const w1 = softmax(sims);
        const w = softmax(w1.map((v, i) => (v + lens[i]!) / 2 / temperature));
        local.fill(0);
        ids.forEach((pid, i) => { for (let d = 0; d < bd; d++) local[d] = local[d]! + w[i]! * o.base[pid * bd + d]!; });
        hasLocal = true;
      }
    }
    if (full !== null && globalWeight > 0 && indexIds.length > 0) {
      const nbr = nearest(index, ed, full, Math.min(topK, indexIds.length));
      const sims = nbr.map((n) => n.sim);
      const w = softmax(sims.map((s) => s / temperature)).map((v, i) => (sims[i]! >= threshold ? v : 0));
      const sum = w.reduce((a, b) => a + b, 0);
      if (sum > 0) {
        global.fill(0);
        nbr.forEach((n, i) => { const oid = indexIds[n.row]!; for (let d = 0; d < bd; d++) global[d] = global[d]! + (w[i]! / sum) * o.base[oid * bd + d]!; });
        hasGlobal = true;
      }
    }
    const at = id * bd;
    if (hasLocal && hasGlobal) for (let d = 0; d < bd; d++) p.out[at + d] = (1 - globalWeight) * local[d]! + globalWeight * global[d]!;
    else if (hasLocal) for (let d = 0; d < bd; d++) p.out[at + d] = local[d]!;
    else if (hasGlobal) for (let d = 0; d < bd; d++) p.out[at + d] = global[d]!;
    else {
      fallbacks++;
      meanRows(o.base, bd, p.pieces(bytes), p.out, at);
    }
  }
  return fallbacks;
}

/** The k rows of a unit-norm index [n, dim] with the largest cosine to q (brute force, as faiss IndexFlatIP). */
function nearest(index: Float32Array, dim: number, q: Float32Array, k: number): { row: number; sim: number }[] {
  let qn = 0;
  for (let d = 0; d < dim; d++) qn += q[d]! * q[d]!;
  const s = qn > 0 ? 1 / Math.sqrt(qn) : 0;
  const best: { row: number; sim: number }[] = [];
  const n = index.length / dim;
  for (let r = 0; r < n; r++) {
    let dot = 0;
    const off = r * dim;
    for (let d = 0; d < dim; d++) dot += index[off + d]! * q[d]!;
    const sim = dot * s;
    if (best.length < k || sim > best[best.length - 1]!.sim) {
      let i = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push({ row: r, sim });
      while (i > 0 && best[i - 1]!.sim < sim) { best[i] = best[i - 1]!; i--; }
      best[i] = { row: r, sim };
    }
  }
  return best;
}

function result(p: Plan, fallbacks: number): TransplantResult {
  return { embeddings: p.out, anchorsNew: p.anchorsNew, anchorsOld: p.anchorsOld, approximated: p.approximated, fallbacks };
}

/**
 * Builds the embedding matrix of `newVocab` for the base model (see the file
 * comment for the methods). Shapes: base f32 [oldVocab.size, baseDim],
 * donor f32 [newVocab.size, donorDim] ('omp') -> f32 [newVocab.size, baseDim].
 * Unused new ids, and non-anchors outside `targets`, are rows of zeros.
 */
export function transplantEmbeddings(options: TransplantOptions): TransplantResult {
  const p = plan(options);
  if (p.o.method === 'mean-of-pieces') return result(p, meanOfPieces(p));
  if (p.o.method === 'tokenadapt') return result(p, tokenAdapt(p));
  const inputs = ompInputs(p);
  const codes = ompBatch(inputs.atoms, inputs.targets, inputs.donorDim, { k: inputs.k, gramCacheBytes: p.o.gramCacheBytes });
  return result(p, ompFinish(p, inputs, codes));
}

/** {@link transplantEmbeddings} with the OMP codes computed off the event loop (onProgress(done, total) in targets). */
export async function transplantEmbeddingsAsync(options: TransplantOptions): Promise<TransplantResult> {
  const p = plan(options);
  if (p.o.method !== 'omp') return transplantEmbeddings(options);
  const inputs = ompInputs(p);
  const total = p.approximated.length;
  const onProgress = p.o.onProgress;
  const codes = await ompBatchAsync(inputs.atoms, inputs.targets, inputs.donorDim, {
    k: inputs.k, gramCacheBytes: p.o.gramCacheBytes, onProgress: onProgress ? (n) => onProgress(n, total) : undefined,
  });
  return result(p, ompFinish(p, inputs, codes));
}
