// Embedding transplantation (lib/tokenizer/transplant.ts) on two toy byte-level
// BPE vocabularies: anchors copied, mean-of-pieces by hand, OMP exact when the
// base space is a linear image of the donor space, TokenAdapt's weights
// recomputed from heuristics.py's formulas, held-out (treatAsNew) tokens, errors.
import { describe, expect, test } from 'vitest';
import { ByteBpeVocab } from '../../lib/tokenizer/byte-bpe-vocab.js';
import { transplantEmbeddings, transplantEmbeddingsAsync, type TokenEmbedder } from '../../lib/tokenizer/transplant.js';
import { mulberry32, randomF32 } from '../reference/random.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
/** The 256 single bytes (ids 0..255, as byte-level BPE needs), then multi-byte tokens (tiktoken ranks: the id is the rank). */
const vocab = (name: string, toks: (string | undefined)[]): ByteBpeVocab => new ByteBpeVocab({
  name, specials: [], patterns: ['\\S+|\\s+'],
  tokens: [...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)), ...toks.map((t) => (t === undefined ? undefined : enc(t)))],
});

// Old: 256 bytes + 6. New: 256 bytes + shares ab, cd, de, abc (260 anchors), adds bcd, abcde, cde; one hole (id 259).
const OLD = vocab('old', ['ab', 'cd', 'bc', 'de', 'abc', 'xy']);
const NEW = vocab('new', ['de', 'cd', 'ab', undefined, 'bcd', 'abcde', 'cde', 'abc']);
const NEW_IDS = [260, 261, 262]; // bcd abcde cde
const rowOf = (m: Float32Array, dim: number, id: number): number[] => Array.from(m.subarray(id * dim, (id + 1) * dim));

describe('transplantEmbeddings', () => {
  const baseDim = 5;
  const base = randomF32(mulberry32(1), OLD.size * baseDim);

  test('anchors are copied, holes are zero, non-anchors are approximated', () => {
    const r = transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'mean-of-pieces' });
    expect(r.anchorsNew.length).toBe(260);
    for (let i = 0; i < r.anchorsNew.length; i++) {
      expect(rowOf(r.embeddings, baseDim, r.anchorsNew[i]!)).toEqual(rowOf(base, baseDim, r.anchorsOld[i]!));
      expect(NEW.tokenBytes(r.anchorsNew[i]!)).toEqual(OLD.tokenBytes(r.anchorsOld[i]!));
    }
    expect(rowOf(r.embeddings, baseDim, 259)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(r.approximated)).toEqual(NEW_IDS);
  });

  test('mean-of-pieces is the mean of the old pieces (oldVocab.encodeBytes)', () => {
    const r = transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'mean-of-pieces' });
    for (const id of NEW_IDS) {
      const pieces = OLD.encodeBytes(NEW.tokenBytes(id));
      expect(pieces.length).toBeGreaterThan(1);
      const want = rowOf(base, baseDim, 0).map((_, d) => pieces.reduce((s, p) => s + base[p * baseDim + d]!, 0) / pieces.length);
      rowOf(r.embeddings, baseDim, id).forEach((v, d) => expect(v).toBeCloseTo(want[d]!, 6));
    }
  });

  test('omp: exact when base = donor * M and the anchors span the donor space', async () => {
    const donorDim = 4;
    const rng = mulberry32(5);
    const donor = randomF32(rng, NEW.size * donorDim);
    const M = randomF32(rng, donorDim * baseDim);
    // Base rows of the anchors' old twins = donor row * M; other old rows random.
    const b = randomF32(rng, OLD.size * baseDim);
    const probe = transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base: b, baseDim, method: 'mean-of-pieces' });
    const image = (id: number): number[] => Array.from({ length: baseDim }, (_, e) => {
      let s = 0;
      for (let d = 0; d < donorDim; d++) s += donor[id * donorDim + d]! * M[d * baseDim + e]!;
      return s;
    });
    probe.anchorsNew.forEach((nid, i) => b.set(image(nid), probe.anchorsOld[i]! * baseDim));
    const opts = { oldVocab: OLD, newVocab: NEW, base: b, baseDim, method: 'omp' as const, donor, donorDim, k: 8, targets: NEW_IDS };
    const r = transplantEmbeddings(opts);
    for (const id of r.approximated) rowOf(r.embeddings, baseDim, id).forEach((v, e) => expect(v).toBeCloseTo(image(id)[e]!, 3));
    const seen: number[] = [];
    const ra = await transplantEmbeddingsAsync({ ...opts, onProgress: (done) => seen.push(done) });
    expect(ra.embeddings).toEqual(r.embeddings);
    expect(seen.at(-1)).toBe(3);
  });

  test('tokenadapt: 0.7 local + 0.3 global with the weights of heuristics.py', () => {
    const embedDim = 3;
    const rng = mulberry32(9);
    const table = new Map<string, Float32Array>();
    const embed: TokenEmbedder = (bytes) => {
      const key = new TextDecoder().decode(bytes);
      if (key === 'xy') return null; // unknown to the embedder: never a neighbour
      if (!table.has(key)) table.set(key, randomF32(rng, embedDim));
      return table.get(key)!;
    };
    const r = transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'tokenadapt', embed, embedDim });
    const cos = (a: Float32Array, b: Float32Array): number => {
      let ab = 0, aa = 0, bb = 0;
      for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! ** 2; bb += b[i]! ** 2; }
      return ab / Math.sqrt(aa * bb);
    };
    const softmax = (x: number[]): number[] => { const e = x.map((v) => Math.exp(v)); const s = e.reduce((a, c) => a + c); return e.map((v) => v / s); };
    for (const id of NEW_IDS) {
      const bytes = NEW.tokenBytes(id);
      const full = embed(bytes)!;
      const pieces = OLD.encodeBytes(bytes);
      const w1 = softmax(pieces.map((p) => cos(full, embed(OLD.tokenBytes(p))!)));
      const lens = pieces.map((p) => OLD.tokenBytes(p).length / bytes.length);
      const wl = softmax(w1.map((v, i) => (v + lens[i]!) / 2 / 0.3));
      const cands = Array.from({ length: OLD.size }, (_, o) => o).filter((o) => o !== OLD.idOf(enc('xy')))
        .map((o) => ({ o, s: cos(full, embed(OLD.tokenBytes(o))!) })).sort((x, y) => y.s - x.s).slice(0, 3);
      const wg = softmax(cands.map((c) => c.s / 0.3)).map((w, i) => (cands[i]!.s >= 0 ? w : 0));
      const sg = wg.reduce((a, c) => a + c);
      for (let d = 0; d < baseDim; d++) {
        const local = pieces.reduce((s, p, i) => s + wl[i]! * base[p * baseDim + d]!, 0);
        const global = cands.reduce((s, c, i) => s + (wg[i]! / sg) * base[c.o * baseDim + d]!, 0);
        expect(r.embeddings[id * baseDim + d]).toBeCloseTo(sg > 0 ? 0.7 * local + 0.3 * global : local, 5);
      }
    }
    expect(r.fallbacks).toBe(0);
  });

  test('treatAsNew: a shared token is approximated, its old twin leaves anchors and pieces', () => {
    const ab = NEW.idOf(enc('ab'));
    const r = transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'mean-of-pieces', treatAsNew: [ab], targets: [ab] });
    expect(Array.from(r.approximated)).toEqual([ab]);
    expect(Array.from(r.anchorsNew)).not.toContain(ab);
    const a = OLD.idOf(enc('a')), b = OLD.idOf(enc('b'));
    rowOf(r.embeddings, baseDim, ab).forEach((v, d) => expect(v).toBeCloseTo((base[a * baseDim + d]! + base[b * baseDim + d]!) / 2, 6));
    expect(rowOf(r.embeddings, baseDim, NEW.idOf(enc('cde')))).toEqual([0, 0, 0, 0, 0]); // not a target
  });

  test('argument errors name the argument; nothing is thrown half-way', () => {
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base: base.subarray(5), baseDim, method: 'omp' })).toThrow(/options.base/);
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'omp' })).toThrow(/options.donorDim/);
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'tokenadapt' })).toThrow(/options.embed/);
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'nope' as never })).toThrow(/options.method/);
    expect(() => transplantEmbeddings({ oldVocab: {} as never, newVocab: NEW, base, baseDim, method: 'omp' })).toThrow(TypeError);
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'mean-of-pieces', treatAsNew: [9999] })).toThrow(/treatAsNew\[0\]/);
    expect(() => transplantEmbeddings({ oldVocab: OLD, newVocab: NEW, base, baseDim, method: 'mean-of-pieces', kk: 1 } as never)).toThrow(/unknown option/);
  });
});
