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
 * sequence t1..ti is not canonical (vocab.isCanonical) is masked (its
 * probability set to 0, not renormalized: the official run_TR). Q(T) is the
 * product of the masked probabilities. The lemma: the probability that the
 * bytes start with x is the sum of Q(T) over the COVER encodings of x, the
 * token sequences whose bytes before the last token are a strict prefix of x
 * and whose bytes with it extend x (x is reached inside or at the end of the
 * last token). Then
 *
 *   P(x_{n+1} = b | x) = sum_{T in cover(x b)} Q(T) / sum_{b'} (same for b').
 *
 * A cover of x b either (1) is a cover of x whose last token's remainder
 * (its bytes past x) starts with b, or (2) is E(x) + t with E(x) the
 * canonical encoding of x (the only masked-in sequence that decodes to x
 * exactly) and t a token starting with b:
 *
 *   Pu(b) = sum_{covers of x, remainder r != '', r[0] = b} Q(cover)
 *         + Q(E(x)) sum_{t : t[0] = b, E(x) t canonical} P(t | E(x)).
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
 * (remainder shortened by one byte) plus the tokens t[0] = b after E(x)
 * (masked-in); the one cover that ends exactly at n + 1 and equals E(x b) is
 * Q(E(x b)), the others ending there are dropped (not canonical). One LM call
 * per byte: P(. | E(x)). The mask row over the vocabulary for a local E(x) is
 * memoized (words repeat).
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
import { callTokenLm, checkTokenLm, type TokenLm } from './token-lm.js';
import type { TokenVocab } from './types.js';

export type ByteProbsMask = 'canonical' | 'none';

export interface ByteProbsOptions {
  /**
   * 'canonical' (default, exact): mask every token whose prefix sequence is
   * not canonical. 'none': no mask (the official fast_mode): faster, not exact.
   */
  mask?: ByteProbsMask;
  /** Token ids placed before every context (a BOS token); default none. */
  prefix?: readonly number[];
  /** Mask rows memoized (vocab.size bytes each); default 512. 0: no memo. */
  maskMemo?: number;
}

const OPTION_NAMES = ['mask', 'prefix', 'maskMemo'] as const;
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
  /** @internal */ readonly tables: VocabTables;
  readonly #memo = new Map<string, Uint8Array>();
  #allOnes: Uint8Array | null = null;
  /** Counters: LM calls and mask rows computed (for benchmarks; never change a result). */
  readonly stats = { lmCalls: 0, maskRows: 0, maskHits: 0 };

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
    this.tables = vocabTables(vocab);
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
   * Mask row for the local canonical tokens E: row[t] = 1 when E t is
   * canonical (local: the bytes from the last pre-token start).
   * @internal
   */
  maskRow(local: readonly number[]): Uint8Array {
    const { first } = this.tables;
    if (this.mask === 'none') {
      if (!this.#allOnes) this.#allOnes = Uint8Array.from(first, (f) => (f >= 0 ? 1 : 0));
      return this.#allOnes;
    }
    const key = local.join(',');
    const hit = this.#memo.get(key);
    if (hit) {
      this.stats.maskHits++;
      this.#memo.delete(key); // most recently used last
      this.#memo.set(key, hit);
      return hit;
    }
    const row = new Uint8Array(first.length);
    const seq = [...local, 0];
    for (let t = 0; t < first.length; t++) {
      if (first[t]! < 0) continue;
      seq[local.length] = t;
      if (this.vocab.isCanonical(seq)) row[t] = 1;
    }
    this.stats.maskRows++;
    if (this.maskMemo > 0) {
      if (this.#memo.size >= this.maskMemo) this.#memo.delete(this.#memo.keys().next().value!);
      this.#memo.set(key, row);
    }
    return row;
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
    this.stats.lmCalls++;
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

/**
 * The state after some bytes x of a document: the cover encodings of x with
 * their weights, and E(x) split at the last pre-token start. push(b) moves
 * to x b; probs() is P(next byte | x). Cheap to clone (the covers are copied).
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
  /** Q(E(x)), relative (all weights are renormalized to sum 1 after each byte). */
  #qFull = 1;
  /** Covers with a non-empty remainder: last token, bytes of it already inside x, weight, absolute start. */
  #tok: number[] = [];
  #off: number[] = [];
  #w: number[] = [];
  #start: number[] = [];
  #row: Float64Array | null = null;
  #mask: Uint8Array | null = null;

  constructor(owner: TokenByteProbs) {
    if (!(owner instanceof TokenByteProbs)) throw typeError('owner', 'a TokenByteProbs', owner);
    this.owner = owner;
  }

  /** Canonical tokens of the bytes so far (E(x)); a copy. */
  get tokens(): number[] {
    return [...this.#global, ...this.#localTokens];
  }

  /** Number of cover encodings with a remainder (for tests and benchmarks). */
  get covers(): number {
    return this.#tok.length;
  }

  clone(): ByteProbStepper {
    const c = new ByteProbStepper(this.owner);
    c.length = this.length;
    c.#global = this.#global.slice();
    c.#local = this.#local.slice();
    c.#localTokens = this.#localTokens.slice();
    c.#split = this.#split;
    c.#qFull = this.#qFull;
    c.#tok = this.#tok.slice();
    c.#off = this.#off.slice();
    c.#w = this.#w.slice();
    c.#start = this.#start.slice();
    c.#row = this.#row;
    c.#mask = this.#mask;
    return c;
  }

  #ensure(): { row: Float64Array; mask: Uint8Array } {
    this.#row ??= this.owner.lmRow(this.#global, this.#localTokens);
    this.#mask ??= this.owner.maskRow(this.#localTokens);
    return { row: this.#row, mask: this.#mask };
  }

  /** P(next byte | bytes so far): a new Float64Array [256] summing to 1 (uniform when every weight is 0). */
  probs(): Float64Array {
    const { row, mask } = this.#ensure();
    const { first, bytes } = this.owner.tables;
    const dist = new Float64Array(256);
    if (this.#qFull > 0) {
      for (let t = 0; t < row.length; t++) {
        if (mask[t] === 1) dist[first[t]!] = dist[first[t]!]! + row[t]!;
      }
      for (let b = 0; b < 256; b++) dist[b] = dist[b]! * this.#qFull;
    }
    for (let i = 0; i < this.#tok.length; i++) {
      const b = bytes[this.#tok[i]!]![this.#off[i]!]!;
      dist[b] = dist[b]! + this.#w[i]!;
    }
    let sum = 0;
    for (let b = 0; b < 256; b++) sum += dist[b]!;
    if (!(sum > 0 && sum < Infinity)) return dist.fill(UNIFORM);
    for (let b = 0; b < 256; b++) dist[b] = dist[b]! / sum;
    return dist;
  }

  /** Moves to the bytes so far + byte. */
  push(byte: number): void {
    checkInteger('byte', byte, 0, 255);
    const { row, mask } = this.#ensure();
    const { bytes, byFirst } = this.owner.tables;
    const vocab = this.owner.vocab;
    const n = this.length;
    const tok: number[] = [], off: number[] = [], w: number[] = [], start: number[] = [];
    const doneTok: number[] = [], doneStart: number[] = [], doneW: number[] = [];
    const keep = (t: number, o: number, wt: number, s: number): void => {
      if (o === bytes[t]!.length) {
        doneTok.push(t);
        doneStart.push(s);
        doneW.push(wt);
      } else {
        tok.push(t);
        off.push(o);
        w.push(wt);
        start.push(s);
      }
    };
    // (1) covers of x whose remainder starts with byte.
    for (let i = 0; i < this.#tok.length; i++) {
      const t = this.#tok[i]!, o = this.#off[i]!;
      if (bytes[t]![o] === byte) keep(t, o + 1, this.#w[i]!, this.#start[i]!);
    }
    // (2) E(x) + t, t masked in and starting with byte.
    if (this.#qFull > 0) {
      for (const t of byFirst[byte]!) {
        const p = row[t]!;
        if (mask[t] !== 1 || !(p > 0)) continue;
        keep(t, 1, this.#qFull * p, n);
      }
    }
    this.length = n + 1;
    this.#local.push(byte);
    // E(x b): the one finished cover that is canonical carries Q(E(x b)).
    const localTokens = vocab.encodeBytes(Uint8Array.from(this.#local));
    const last = localTokens[localTokens.length - 1]!;
    const lastStart = this.#split + this.#local.length - bytes[last]!.length;
    let qFull = 0;
    for (let i = 0; i < doneTok.length; i++) if (doneTok[i] === last && doneStart[i] === lastStart) qFull += doneW[i]!;
    this.#localTokens = localTokens;
    this.#qFull = qFull;
    this.#tok = tok;
    this.#off = off;
    this.#w = w;
    this.#start = start;
    this.#moveSplit();
    this.#renormalize();
    this.#row = null;
    this.#mask = null;
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
    for (let i = 0; i < k; i++) this.#global.push(this.#localTokens[i]!);
    this.#localTokens = this.#localTokens.slice(k);
    this.#local = this.#local.slice(s);
    this.#split += s;
    // A cover that starts before the new split crosses it: never canonical.
    let j = 0;
    for (let i = 0; i < this.#tok.length; i++) {
      if (this.#start[i]! < this.#split) continue;
      this.#tok[j] = this.#tok[i]!;
      this.#off[j] = this.#off[i]!;
      this.#w[j] = this.#w[i]!;
      this.#start[j] = this.#start[i]!;
      j++;
    }
    this.#tok.length = this.#off.length = this.#w.length = this.#start.length = j;
  }

  #renormalize(): void {
    let sum = this.#qFull;
    for (const x of this.#w) sum += x;
    if (!(sum > 0 && sum < Infinity)) return;
    this.#qFull /= sum;
    for (let i = 0; i < this.#w.length; i++) this.#w[i] = this.#w[i]! / sum;
  }
}
