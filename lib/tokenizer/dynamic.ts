// Dynamic tokenization (batch-level BPE), after DariusFeher/dynamic-tokenization,
// tokenizations/dynamic_bpe.py (Dynamic_BPE.tokenize_batch): start from a
// batch's base tokens and repeatedly merge the most frequent valid adjacent
// pair over the whole batch into a new token, so that the batch gets shorter
// with a vocabulary fitted to it. The counting and merging is native and
// incremental (native/text/dynamic_bpe.cpp); which pairs may merge is decided
// here (./dynamic-rules.ts), once per distinct pair.
//
// Shapes: a batch of nSeq sequences of base ids in [0, vocab.size); new ids
// are vocab.size, vocab.size + 1, ... in merge order.
import { rangeError, typeError } from '../errors.js';
import { native } from '../native.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { DYNAMIC_BOUNDARIES, pairRule, type DynamicBoundary, type DynamicVocab } from './dynamic-rules.js';

export { DYNAMIC_BOUNDARIES, type DynamicBoundary, type DynamicVocab } from './dynamic-rules.js';

export interface DynamicTokenizeOptions {
  /** Merges stay inside one pre-token of the vocabulary ('pretoken', the official default), one whitespace-separated word ('word'), or anywhere the whitespace rule allows ('sentence'). */
  boundary?: DynamicBoundary;
  /** Most merges to make (official default 1000); fewer when no valid pair is left. */
  maxMerges?: number;
  /** Stop once the average sequence length is <= this many tokens. */
  targetLength?: number;
  /** Stop once the total length is <= (1 - targetReduction) * the base length; in [0, 1). Not with targetLength. */
  targetReduction?: number;
  /** Stop when the most frequent valid pair occurs fewer times than this (default 1: the official code merges until no pair is left). */
  minCount?: number;
}

export const DYNAMIC_DEFAULTS = { boundary: 'pretoken', maxMerges: 1000, minCount: 1 } as const;
const OPTION_NAMES = ['boundary', 'maxMerges', 'targetLength', 'targetReduction', 'minCount'] as const;

/** One merge: ids a and b (base or earlier new ids) became `id`. */
export interface DynamicMerge {
  readonly a: number;
  readonly b: number;
  readonly id: number;
  /** Occurrences of the pair in the batch when it was chosen (overlaps counted, as the official Counter does). */
  readonly count: number;
  /** Replacements made (left to right, non-overlapping: "a a a" gives 1). */
  readonly applied: number;
}

export interface DynamicTokenization {
  /** Merged sequences [nSeq][len_s]. */
  readonly sequences: Int32Array[];
  /** starts[s][j]: index, in base sequence s, of the first base token of sequences[s][j]; token j covers base [starts[j], starts[j+1]). */
  readonly starts: Int32Array[];
  /** The merges in order; merges[k].id = firstNewId + k. */
  readonly merges: DynamicMerge[];
  /** vocab.size: the first new id. */
  readonly firstNewId: number;
  /** Each new id -> the base ids it stands for, in order. */
  readonly pieces: ReadonlyMap<number, readonly number[]>;
  /** Total base tokens and total tokens after merging. */
  readonly baseLength: number;
  readonly length: number;
  /** The bytes of any id of the result (base or new). */
  tokenBytes(id: number): Uint8Array;
}

function checkVocab(vocab: unknown): DynamicVocab {
  const v = vocab as DynamicVocab | null;
  if (v === null || typeof v !== 'object' || !Number.isInteger(v.size) || v.size < 1 ||
      typeof v.tokenBytes !== 'function' || typeof v.isSpecial !== 'function' || typeof v.isUsed !== 'function' || typeof v.pretokenStarts !== 'function') {
    throw typeError('vocab', 'a TokenVocab (size, tokenBytes, isSpecial, isUsed, pretokenStarts)', vocab);
  }
  if (v.size >= 2 ** 31) throw rangeError('vocab.size', 'fewer than 2^31 ids', v.size);
  return v;
}

/** Copies the batch into one Int32Array with offsets, checking every id. */
function flattenBatch(batch: unknown, vocab: DynamicVocab): { tokens: Int32Array; offsets: Float64Array } {
  if (!Array.isArray(batch)) throw typeError('batch', 'an array of token id arrays', batch);
  const offsets = new Float64Array(batch.length + 1);
  let total = 0;
  for (let s = 0; s < batch.length; s++) {
    const seq = batch[s] as unknown;
    if (!Array.isArray(seq) && !(ArrayBuffer.isView(seq) && !(seq instanceof DataView) && !(seq instanceof BigInt64Array) && !(seq instanceof BigUint64Array))) {
      throw typeError(`batch[${s}]`, 'an array or integer typed array of token ids', seq);
    }
    total += (seq as ArrayLike<number>).length;
    offsets[s + 1] = total;
  }
  if (total >= 2 ** 31 - 1) throw rangeError('batch', 'fewer than 2^31 - 1 tokens in all', total);
  const tokens = new Int32Array(total);
  for (let s = 0, k = 0; s < batch.length; s++) {
    const seq = batch[s] as ArrayLike<number>;
    for (let i = 0; i < seq.length; i++, k++) {
      const id = seq[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab.size || !vocab.isUsed(id)) {
        throw rangeError(`batch[${s}][${i}]`, `a used token id in [0, ${vocab.size})`, id);
      }
      tokens[k] = id;
    }
  }
  return { tokens, offsets };
}

interface Targets {
  boundary: DynamicBoundary;
  maxMerges: number;
  minCount: number;
  targetLength?: number;
  targetReduction?: number;
}

function checkDynamicOptions(options: unknown): Targets {
  const o = checkOptions('options', options, OPTION_NAMES);
  const boundary = (o.boundary ?? DYNAMIC_DEFAULTS.boundary) as DynamicBoundary;
  if (!DYNAMIC_BOUNDARIES.includes(boundary)) throw typeError('options.boundary', `one of ${DYNAMIC_BOUNDARIES.map((b) => `'${b}'`).join(', ')}`, o.boundary);
  const maxMerges = o.maxMerges === undefined ? DYNAMIC_DEFAULTS.maxMerges : checkInteger('options.maxMerges', o.maxMerges, 0, 2 ** 31 - 1);
  const minCount = o.minCount === undefined ? DYNAMIC_DEFAULTS.minCount : checkInteger('options.minCount', o.minCount, 1);
  const t: Targets = { boundary, maxMerges, minCount };
  if (o.targetLength !== undefined && o.targetReduction !== undefined) {
    throw new TypeError('options: expected at most one of targetLength and targetReduction, received both');
  }
  if (o.targetLength !== undefined) t.targetLength = checkNumber('options.targetLength', o.targetLength, { positive: true });
  if (o.targetReduction !== undefined) {
    const r = checkNumber('options.targetReduction', o.targetReduction);
    if (!(r >= 0 && r < 1)) throw rangeError('options.targetReduction', 'a number in [0, 1)', r);
    t.targetReduction = r;
  }
  return t;
}

/**
 * Dynamic tokenization of a batch: merges the most frequent valid adjacent
 * pair over all sequences, again and again, until maxMerges merges are made,
 * no valid pair is left, the best pair is rarer than minCount, or the target
 * length is reached (checked before each merge).
 *
 * batch: nSeq arrays of base ids (number[] or integer typed arrays), not
 * modified. Ties between equally frequent pairs go to the pair that occurs
 * first in the batch (the official code's order). Synchronous: pair validity
 * runs the vocabulary's JS pre-tokenizer.
 */
export function dynamicTokenize(batch: readonly (ArrayLike<number>)[], vocab: DynamicVocab, options?: DynamicTokenizeOptions): DynamicTokenization {
  const v = checkVocab(vocab);
  const opts = checkDynamicOptions(options);
  const { tokens, offsets } = flattenBatch(batch, v);
  const nSeq = offsets.length - 1;
  const baseLength = tokens.length;
  let targetTotal = 0;
  if (opts.targetLength !== undefined) targetTotal = Math.floor(opts.targetLength * nSeq);
  if (opts.targetReduction !== undefined) targetTotal = Math.floor((1 - opts.targetReduction) * baseLength);
  const maxMerges = Math.min(opts.maxMerges, 2 ** 31 - 1 - v.size);

  const firstNewId = v.size;
  // Each distinct pair of this batch is tested once (the official code memoizes the same test), in batches.
  const rule = pairRule(v, opts.boundary);
  const isValidPairs = (a: Int32Array, b: Int32Array): Uint8Array => {
    const ok = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) ok[i] = rule.isValid(a[i]!, b[i]!) ? 1 : 0;
    return ok;
  };
  const onMerge = (a: number, b: number): void => rule.addMerge(a, b);
  const r = native().dynamicBpe({ tokens, offsets, firstNewId, maxMerges, targetTotal, minCount: opts.minCount, isValidPairs, onMerge });

  const merges: DynamicMerge[] = [];
  const pieces = new Map<number, readonly number[]>();
  const piecesOf = (id: number): readonly number[] => (id < firstNewId ? [id] : pieces.get(id)!);
  for (let k = 0; k < r.mergeA.length; k++) {
    const a = r.mergeA[k]!;
    const b = r.mergeB[k]!;
    const id = firstNewId + k;
    merges.push({ a, b, id, count: r.mergeCount[k]!, applied: r.mergeApplied[k]! });
    pieces.set(id, [...piecesOf(a), ...piecesOf(b)]);
  }
  const sequences: Int32Array[] = [];
  const starts: Int32Array[] = [];
  for (let s = 0; s < nSeq; s++) {
    sequences.push(r.tokens.slice(r.offsets[s]!, r.offsets[s + 1]!));
    starts.push(r.starts.slice(r.offsets[s]!, r.offsets[s + 1]!));
  }
  const tokenBytes = (id: number): Uint8Array => {
    if (!Number.isInteger(id) || id < 0 || id >= firstNewId + merges.length) {
      throw rangeError('id', `an id in [0, ${firstNewId + merges.length})`, id);
    }
    return rule.bytesOf(id);
  };
  return { sequences, starts, merges, firstNewId, pieces, baseLength, length: r.tokens.length, tokenBytes };
}

/**
 * Mean-of-pieces embeddings for the new tokens of a dynamic tokenization:
 * row k = mean of the base embeddings of merges[k]'s pieces (with
 * repetition). The official pipeline embeds new tokens with a trained
 * hypernetwork (ZeTT); this is the training-free floor.
 *
 * embeddings: f32 [rows, dim] with rows >= result.firstNewId. Returns f32 [merges.length, dim].
 */
export function meanOfPiecesEmbeddings(result: DynamicTokenization, embeddings: Float32Array, dim: number): Float32Array {
  if (result === null || typeof result !== 'object' || !(result.pieces instanceof Map) || !Array.isArray(result.merges)) {
    throw typeError('result', 'a DynamicTokenization (from dynamicTokenize)', result);
  }
  if (!(embeddings instanceof Float32Array)) throw typeError('embeddings', 'a Float32Array [rows, dim]', embeddings);
  checkInteger('dim', dim, 1);
  if (embeddings.length % dim !== 0 || embeddings.length / dim < result.firstNewId) {
    throw rangeError('embeddings', `a Float32Array of rows * dim = rows * ${dim} floats with rows >= ${result.firstNewId}`, embeddings);
  }
  const out = new Float32Array(result.merges.length * dim);
  const acc = new Float64Array(dim);
  result.merges.forEach((m, k) => {
    const ids = result.pieces.get(m.id)!;
    acc.fill(0);
    for (const id of ids) {
      for (let j = 0, o = id * dim; j < dim; j++) acc[j] = acc[j]! + embeddings[o + j]!;
    }
    for (let j = 0; j < dim; j++) out[k * dim + j] = acc[j]! / ids.length;
  });
  return out;
}
