/**
 * Exact next-byte probabilities from a token-level LM (Phan et al., "Exact
 * Byte-Level Probabilities from Tokenized Language Models for FIM-Tasks and
 * Model Ensembles", 2024; the Byte-Token Representation Lemma). Official code:
 * facebookresearch/Exact-Byte-Level-Probabilities-from-Tokenized-LMs,
 * src/byte_prediction_model.py (prob_next_byte, update_sampler_state,
 * next_byte_update) and src/string_processor/tokenizer_wrapper.py (isvalid,
 * supertoken, _cover_enc_check).
 *
 * The byte process. The LM generates tokens t1 t2 ...; a token whose prefix
 * sequence t1..ti is not a prefix of some canonical encoding
 * (canonical-prefix.ts; the official code asks "is canonical", which a
 * look-ahead pre-tokenizer breaks) is masked (its probability set to 0, not
 * renormalized: the official run_TR). Q(T) is the
 * product of the masked probabilities. The lemma: the probability that the
 * bytes start with x is the sum of Q(T) over the COVER encodings of x, the
 * token sequences whose bytes before the last token are a strict prefix of x
 * and whose bytes with it extend x (x is reached inside or at the end of the
 * last token). Then
 *
 *   P(x_{n+1} = b | x) = sum_{T in cover(x b)} Q(T) / sum_{b'} (same for b').
 *
 * A cover of x b either (1) is a cover of x whose last token's remainder
 * (its bytes past x) starts with b, or (2) is S + t with S a masked-in
 * sequence that decodes to x exactly (an "exact state": the canonical
 * encoding E(x), and at a look-ahead boundary also e.g. [8 spaces, " "] for 9
 * spaces) and t a token starting with b:
 *
 *   Pu(b) = sum_{covers of x, remainder r != '', r[0] = b} Q(cover)
 *         + sum_{exact S} Q(S) sum_{t : t[0] = b, S t masked in} P(t | S).
 *
 * Split at the last pre-token boundary (the official div_enc, there the last
 * whitespace; here vocab.pretokenStarts, so any pre-tokenizer regex): no
 * canonical token crosses a pre-token boundary, so every masked-in sequence
 * covering x starts with E(x[0, s)), s the last pre-token start of x, and
 * Q(that prefix) is a common factor that cancels. Only the last pre-token
 * u = x[s, n) is handled token by token ("local"); the canonicality checks
 * run on the local tokens (the official _process_end_utf8 cuts at the same
 * place). This assumes that appending bytes never removes the last
 * pre-token start (true for the tiktoken / HF ByteLevel regexes we ship; the
 * brute-force test checks it on a regex with a lookahead).
 *
 * Incremental (ByteProbStepper.push, the official update_sampler_state):
 * the covers of x b are the covers of x whose remainder starts with b
 * (remainder shortened by one byte) plus the tokens t[0] = b after each exact
 * state (masked-in); the covers that end exactly at n + 1 are the exact
 * states of x b (all masked in, so all kept; with mask 'none' only E(x b) is
 * kept, as before). One LM call per exact state per byte (usually one). The
 * mask row over the vocabulary for a local sequence is memoized (words
 * repeat) and costs one regex match per token, not one encode
 * (canonical-prefix.ts).
 *
 * Where we differ from the official code: byte-level BPE vocabularies
 * (TokenVocab: tiktoken ranks, HF ByteLevel) instead of SentencePiece byte
 * fallback; no BOS unless options.prefix gives one; the LM context is
 * cut to lm.maxContext tokens; a cover that crosses a new pre-token start is
 * dropped in both modes (it cannot be completed canonically); weights are
 * renormalized after every byte (float64, no log space needed); an
 * all-zero row (the LM gives 0 to every continuation) yields the uniform
 * distribution instead of NaN.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { CanonicalPrefixRows } from './canonical-prefix.js';
import { callTokenLm, checkTokenLm, type TokenLm } from './token-lm.js';
import type { TokenVocab } from './types.js';

export type ByteProbsMask = 'canonical' | 'none';

export interface ByteProbsOptions {
  /**
   * 'canonical' (default, exact): mask every token whose prefix sequence is
   * not a prefix of some canonical encoding (canonical-prefix.ts). 'none': no
   * mask (the official fast_mode): faster, not exact.
   */
  mask?: ByteProbsMask;
  /** Token ids placed before every context (a BOS token); default none. */
  prefix?: readonly number[];
  /** Mask rows memoized (vocab.size bytes each); default 512. 0: no memo. */
  maskMemo?: number;
  /**
   * false (default, the official run_TR): masked tokens lose their
   * probability, so the masked process loses mass. true: every LM row is
   * divided by its masked-in mass (validMass), so the masked process is the
   * token LM restricted to canonical prefixes and renormalized; the byte
   * rows then give the same code length as that model's token-level loss
   * (up to the end term -log2 exactShare).
   */
  renormalize?: boolean;
}

const OPTION_NAMES = ['mask', 'prefix', 'maskMemo', 'renormalize'] as const;
const UNIFORM = 1 / 256;

/** Per vocabulary: token bytes, first byte, the tokens by first byte (never changes). */
interface VocabTables {
  bytes: Uint8Array[];
  /** [size]: first byte, or -1 for a token that no canonical encoding holds (empty, unused, special). */
  first: Int16Array;
  /** [256]: ids with that first byte (usable tokens only). */
  byFirst: Int32Array[];
}

const tablesCache = new WeakMap<TokenVocab, VocabTables>();

function vocabTables(vocab: TokenVocab): VocabTables {
  const hit = tablesCache.get(vocab);
  if (hit) return hit;
  const bytes: Uint8Array[] = [];
  const first = new Int16Array(vocab.size).fill(-1);
  const lists: number[][] = Array.from({ length: 256 }, () => []);
  for (let id = 0; id < vocab.size; id++) {
    const b = vocab.tokenBytes(id);
    bytes.push(b);
    if (b.length === 0 || !vocab.isUsed(id) || vocab.isSpecial(id)) continue;
    first[id] = b[0]!;
    lists[b[0]!]!.push(id);
  }
  const t = { bytes, first, byFirst: lists.map((l) => Int32Array.from(l)) };
  tablesCache.set(vocab, t);
  return t;
}

/**
 * Next-byte distributions of one (vocabulary, LM) pair. Holds the memo of
 * mask rows; make one per pair and start a stepper per document.
 */
export class TokenByteProbs {
  readonly vocab: TokenVocab;
  readonly lm: TokenLm;
  readonly mask: ByteProbsMask;
  readonly prefix: readonly number[];
  readonly maskMemo: number;
  readonly renormalize: boolean;
  /** @internal */ readonly tables: VocabTables;
  readonly #rows: CanonicalPrefixRows;
  #allOnes: Uint8Array | null = null;
  readonly #lmStats = { lmCalls: 0 };

  constructor(vocab: TokenVocab, lm: TokenLm, options?: ByteProbsOptions) {
    if (vocab === null || typeof vocab !== 'object' || typeof (vocab as TokenVocab).encodeBytes !== 'function') {
      throw typeError('vocab', 'a TokenVocab (loadVocab)', vocab);
    }
    this.vocab = vocab;
    this.lm = checkTokenLm('lm', lm, vocab.size);
    const o = checkOptions('options', options, OPTION_NAMES);
    if (o.mask !== undefined && o.mask !== 'canonical' && o.mask !== 'none') throw rangeError('options.mask', "'canonical' or 'none'", o.mask);
    this.mask = (o.mask as ByteProbsMask | undefined) ?? 'canonical';
    if (o.prefix !== undefined && !Array.isArray(o.prefix)) throw typeError('options.prefix', 'an array of token ids', o.prefix);
    this.prefix = ((o.prefix as number[] | undefined) ?? []).map((id, i) => checkInteger(`options.prefix[${i}]`, id, 0, vocab.size - 1));
    this.maskMemo = o.maskMemo === undefined ? 512 : checkInteger('options.maskMemo', o.maskMemo, 0, 1 << 20);
    if (o.renormalize !== undefined && typeof o.renormalize !== 'boolean') throw typeError('options.renormalize', 'a boolean', o.renormalize);
    this.renormalize = o.renormalize === true;
    this.tables = vocabTables(vocab);
    this.#rows = new CanonicalPrefixRows(vocab, this.tables.first, this.maskMemo);
  }

  /** Counters: LM calls, mask rows computed, memo hits, tokens that took the full check (for benchmarks; never change a result). */
  get stats(): { lmCalls: number; maskRows: number; maskHits: number; slowChecks: number } {
    const r = this.#rows.stats;
    return { lmCalls: this.#lmStats.lmCalls, maskRows: r.rows, maskHits: r.hits, slowChecks: r.slow };
  }

  /** A stepper at the start of a document (no bytes yet). */
  start(): ByteProbStepper {
    return new ByteProbStepper(this);
  }

  /**
   * P(next byte | bytes): Float64Array [256], summing to 1. From scratch
   * (one stepper pushed through bytes); use a stepper for a whole text.
   */
  nextByteProbs(bytes: Uint8Array): Float64Array {
    if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes);
    const s = this.start();
    for (const b of bytes) s.push(b);
    return s.probs();
  }

  /**
   * Mask row after the local tokens L (from the last pre-token start):
   * row[t] = 1 when L t is a prefix of some canonical encoding
   * (canonical-prefix.ts); memoized (LRU of maskMemo rows).
   * @internal
   */
  maskRow(local: readonly number[]): Uint8Array {
    if (this.mask === 'none') {
      if (!this.#allOnes) this.#allOnes = Uint8Array.from(this.tables.first, (f) => (f >= 0 ? 1 : 0));
      return this.#allOnes;
    }
    return this.#rows.row(local);
  }

  /** The LM row after prefix + global + local tokens (cut to lm.maxContext): a checked copy. @internal */
  lmRow(global: readonly number[], local: readonly number[]): Float64Array {
    const max = this.lm.maxContext ?? Infinity;
    const all = this.prefix.length + global.length + local.length;
    const take = Math.min(max, all);
    const ctx: number[] = new Array<number>(take);
    for (let i = 0; i < take; i++) {
      const j = all - take + i; // index into prefix ++ global ++ local
      ctx[i] = j < this.prefix.length ? this.prefix[j]!
        : j < this.prefix.length + global.length ? global[j - this.prefix.length]!
          : local[j - this.prefix.length - global.length]!;
    }
    this.#lmStats.lmCalls++;
    const row = callTokenLm(this.lm, ctx);
    // A copy (the LM may reuse its array), checked once: finite and >= 0.
    const out = new Float64Array(row.length);
    for (let t = 0; t < row.length; t++) {
      const p = row[t]!;
      if (!(p >= 0 && p < Infinity)) throw rangeError(`lm.nextTokenProbs(context)[${t}]`, 'a finite probability >= 0', p);
      out[t] = p;
    }
    return out;
  }
}

/** A masked-in token sequence that decodes exactly to the bytes so far (tokens from the split on), its weight, its rows (lazy). */
interface ExactState {
  seq: number[];
  w: number;
  row: Float64Array | null;
  mask: Uint8Array | null;
  /** 1, or 1 / validMass with options.renormalize (NaN until the rows are read). */
  scale: number;
}

function sameSeq(a: ArrayLike<number>, b: ArrayLike<number>, n = Math.max(a.length, b.length)): boolean {
  if (a.length < n || b.length < n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The state after some bytes x of a document: the exact states (masked-in
 * sequences decoding to x: E(x), plus look-ahead alternatives) and the
 * cover encodings with a remainder, with their weights, all split at the
 * last pre-token start. push(b) moves to x b; probs() is P(next byte | x).
 * Cheap to clone (the arrays are copied, rows shared).
 */
export class ByteProbStepper {
  readonly owner: TokenByteProbs;
  /** Bytes pushed so far. */
  length = 0;
  /** E(x[0, split)): canonical tokens before the last pre-token start (shared prefix of every cover). */
  #global: number[] = [];
  /** The last pre-token's bytes x[split, n) and their canonical tokens E(u). */
  #local: number[] = [];
  #localTokens: number[] = [];
  #split = 0;
  /** Exact states (weights relative: everything is renormalized to sum 1 after each byte). */
  #ex: ExactState[] = [{ seq: [], w: 1, row: null, mask: null, scale: NaN }];
  /** Covers with a non-empty remainder: last token, bytes of it already inside x, weight, absolute start, the exact state's sequence before it. */
  #tok: number[] = [];
  #off: number[] = [];
  #w: number[] = [];
  #start: number[] = [];
  #parent: number[][] = [];
  #lastMass = NaN;

  constructor(owner: TokenByteProbs) {
    if (!(owner instanceof TokenByteProbs)) throw typeError('owner', 'a TokenByteProbs', owner);
    this.owner = owner;
  }

  /** Canonical tokens of the bytes so far (E(x)); a copy. */
  get tokens(): number[] {
    return [...this.#global, ...this.#localTokens];
  }

  /**
   * The total before normalization of the row probs() last returned:
   * P(x then any byte) / P(x) under the masked process (below 1 by the mass
   * the mask removes); NaN before the first probs(). With it the byte chain
   * telescopes: sum of -log2(row[x_{n+1}] * lastMass) over the bytes, minus
   * log2(exactShare) at the end, is the token-level code length -log2 Q(E(x))
   * (every prefix of E(x) is masked in, so Q(E(x)) is the plain product of
   * the LM's probabilities).
   */
  get lastMass(): number {
    return this.#lastMass;
  }

  /**
   * Q(E(x)) / P(bytes start with x): the share of the prefix probability
   * carried by the canonical encoding alone (the rest: other exact states and
   * covers whose last token runs past x). 1 at the start.
   */
  get exactShare(): number {
    let sum = 0, canon = 0;
    for (const e of this.#ex) {
      sum += e.w;
      if (sameSeq(e.seq, this.#localTokens)) canon += e.w;
    }
    for (const x of this.#w) sum += x;
    return sum > 0 ? canon / sum : 0;
  }

  /** Number of cover encodings with a remainder (for tests and benchmarks). */
  get covers(): number {
    return this.#tok.length;
  }

  /** Number of exact states with weight > 0 (1 except at look-ahead boundaries). */
  get exactStates(): number {
    let n = 0;
    for (const e of this.#ex) if (e.w > 0) n++;
    return n;
  }

  clone(): ByteProbStepper {
    const c = new ByteProbStepper(this.owner);
    c.length = this.length;
    c.#global = this.#global.slice();
    c.#local = this.#local.slice();
    c.#localTokens = this.#localTokens.slice();
    c.#split = this.#split;
    c.#ex = this.#ex.map((e) => ({ ...e }));
    c.#tok = this.#tok.slice();
    c.#off = this.#off.slice();
    c.#w = this.#w.slice();
    c.#start = this.#start.slice();
    c.#parent = this.#parent.slice();
    return c;
  }

  #ensure(e: ExactState): { row: Float64Array; mask: Uint8Array; scale: number } {
    e.row ??= this.owner.lmRow(this.#global, e.seq);
    e.mask ??= this.owner.maskRow(e.seq);
    if (Number.isNaN(e.scale)) {
      let m = 0;
      if (this.owner.renormalize) for (let t = 0; t < e.row.length; t++) if (e.mask[t] === 1) m += e.row[t]!;
      e.scale = !this.owner.renormalize ? 1 : m > 0 ? 1 / m : 0;
    }
    return { row: e.row, mask: e.mask, scale: e.scale };
  }

  /** P(next byte | bytes so far): a new Float64Array [256] summing to 1 (uniform when every weight is 0). */
  probs(): Float64Array {
    const { first, bytes } = this.owner.tables;
    const dist = new Float64Array(256);
    const acc = new Float64Array(256);
    for (const e of this.#ex) {
      if (!(e.w > 0)) continue;
      const { row, mask, scale } = this.#ensure(e);
      acc.fill(0);
      for (let t = 0; t < row.length; t++) {
        if (mask[t] === 1) acc[first[t]!] = acc[first[t]!]! + row[t]!;
      }
      const k = e.w * scale;
      for (let b = 0; b < 256; b++) dist[b] = dist[b]! + acc[b]! * k;
    }
    for (let i = 0; i < this.#tok.length; i++) {
      const b = bytes[this.#tok[i]!]![this.#off[i]!]!;
      dist[b] = dist[b]! + this.#w[i]!;
    }
    let sum = 0;
    for (let b = 0; b < 256; b++) sum += dist[b]!;
    this.#lastMass = sum;
    if (!(sum > 0 && sum < Infinity)) return dist.fill(UNIFORM);
    for (let b = 0; b < 256; b++) dist[b] = dist[b]! / sum;
    return dist;
  }

  /**
   * The LM mass that the mask keeps after E(x): sum of P(t | E(x)) over the
   * masked-in tokens t (1 minus what the mask removes). The masked model's
   * renormalized token loss at a token boundary is -log2 P(t | E(x)) + log2 validMass().
   * tokens: the same for another sequence that decodes to the bytes so far
   * (the whole sequence, starting with the tokens before the split).
   */
  validMass(tokens?: readonly number[]): number {
    let local: readonly number[] = this.#localTokens;
    if (tokens !== undefined) {
      // An exact state given by its whole sequence (e.g. the prefix of the final E(x) at a look-ahead boundary).
      if (!Array.isArray(tokens)) throw typeError('tokens', 'an array of token ids', tokens);
      const g = this.#global.length;
      if (tokens.length < g || !sameSeq(tokens, this.#global, g)) throw rangeError('tokens', 'a sequence that starts with the tokens before the split', tokens.length);
      local = tokens.slice(g);
      if (!sameSeq(this.owner.vocab.decodeBytes(local), this.#local)) throw rangeError('tokens', 'a sequence that decodes to the bytes so far', tokens.length);
    }
    let e = this.#ex.find((s) => sameSeq(s.seq, local));
    e ??= { seq: local.slice(), w: 0, row: null, mask: null, scale: NaN };
    const { row, mask } = this.#ensure(e);
    let m = 0;
    for (let t = 0; t < row.length; t++) if (mask[t] === 1) m += row[t]!;
    return m;
  }

  /** Moves to the bytes so far + byte. */
  push(byte: number): void {
    checkInteger('byte', byte, 0, 255);
    for (const e of this.#ex) if (e.w > 0) this.#ensure(e);
    const { bytes, byFirst } = this.owner.tables;
    const vocab = this.owner.vocab;
    const n = this.length;
    const tok: number[] = [], off: number[] = [], w: number[] = [], start: number[] = [], parent: number[][] = [];
    const done: ExactState[] = [];
    const keep = (t: number, o: number, wt: number, s: number, p: number[]): void => {
      if (o === bytes[t]!.length) {
        done.push({ seq: [...p, t], w: wt, row: null, mask: null, scale: NaN });
      } else {
        tok.push(t);
        off.push(o);
        w.push(wt);
        start.push(s);
        parent.push(p);
      }
    };
    // (1) covers of x whose remainder starts with byte.
    for (let i = 0; i < this.#tok.length; i++) {
      const t = this.#tok[i]!, o = this.#off[i]!;
      if (bytes[t]![o] === byte) keep(t, o + 1, this.#w[i]!, this.#start[i]!, this.#parent[i]!);
    }
    // (2) S + t for every exact state S, t masked in and starting with byte.
    for (const e of this.#ex) {
      if (!(e.w > 0)) continue;
      const row = e.row!, mask = e.mask!, k = e.w * e.scale;
      for (const t of byFirst[byte]!) {
        const p = row[t]!;
        if (mask[t] !== 1 || !(p > 0)) continue;
        keep(t, 1, k * p, n, e.seq);
      }
    }
    this.length = n + 1;
    this.#local.push(byte);
    const localTokens = vocab.encodeBytes(Uint8Array.from(this.#local));
    // The finished covers are the exact states of x b (masked in when they were
    // extended). Mask 'none' keeps one, E(x b), with the weight of every
    // finished cover that ends in E(x b)'s last token (one LM call per byte,
    // as before; not exact).
    this.#ex = this.owner.mask === 'none' ? this.#noneState(done, localTokens) : done;
    this.#localTokens = localTokens;
    this.#tok = tok;
    this.#off = off;
    this.#w = w;
    this.#start = start;
    this.#parent = parent;
    this.#moveSplit();
    this.#renormalize();
  }

  /** Mask 'none': E(x b) (local tokens) weighted by the finished covers whose last token is E(x b)'s last token. */
  #noneState(done: ExactState[], localTokens: number[]): ExactState[] {
    const last = localTokens[localTokens.length - 1]!;
    let w = 0;
    for (const e of done) if (e.seq[e.seq.length - 1] === last) w += e.w;
    return w > 0 ? [{ seq: localTokens.slice(), w, row: null, mask: null, scale: NaN }] : [];
  }

  /** Moves the split to the last pre-token start of the local bytes (tokens before it become global). */
  #moveSplit(): void {
    const starts = this.owner.vocab.pretokenStarts(Uint8Array.from(this.#local));
    const s = starts[starts.length - 1] ?? 0;
    if (s <= 0) return;
    const { bytes } = this.owner.tables;
    let acc = 0, k = 0;
    while (acc < s && k < this.#localTokens.length) acc += bytes[this.#localTokens[k++]!]!.length;
    if (acc !== s) return; // the canonical tokens do not end at s: keep the old split (never for a consistent vocab)
    const head = this.#localTokens.slice(0, k);
    for (const t of head) this.#global.push(t);
    this.#localTokens = this.#localTokens.slice(k);
    this.#local = this.#local.slice(s);
    this.#split += s;
    // Every masked-in sequence starts with E(x[0, s)) (s stays a start in every
    // continuation); others and covers that cross s cannot be completed.
    this.#ex = this.#ex.filter((e) => sameSeq(e.seq, head, k)).map((e) => ({ ...e, seq: e.seq.slice(k) }));
    const cut = new Map<number[], number[] | null>();
    let j = 0;
    for (let i = 0; i < this.#tok.length; i++) {
      if (this.#start[i]! < this.#split) continue;
      const p = this.#parent[i]!;
      let q = cut.get(p);
      if (q === undefined) {
        // (mask 'none' tracks E(x) alone and keeps every cover that does not cross s, as before)
        q = sameSeq(p, head, k) ? p.slice(k) : this.owner.mask === 'none' ? p.slice(Math.min(k, p.length)) : null;
        cut.set(p, q);
      }
      if (q === null) continue;
      this.#tok[j] = this.#tok[i]!;
      this.#off[j] = this.#off[i]!;
      this.#w[j] = this.#w[i]!;
      this.#start[j] = this.#start[i]!;
      this.#parent[j] = q;
      j++;
    }
    this.#tok.length = this.#off.length = this.#w.length = this.#start.length = this.#parent.length = j;
  }

  #renormalize(): void {
    let sum = 0;
    for (const e of this.#ex) sum += e.w;
    for (const x of this.#w) sum += x;
    if (!(sum > 0 && sum < Infinity)) return;
    for (const e of this.#ex) e.w /= sum;
    for (let i = 0; i < this.#w.length; i++) this.#w[i] = this.#w[i]! / sum;
  }
}
