/**
 * Token Recycling (Luo et al. 2024, "Turning Trash into Treasure: Accelerating
 * Inference of Large Language Models with Token Recycling"; official code
 * github.com/Luowaterbi/TokenRecycling, evaluation/inference_recycling.py).
 *
 * State: an adjacency table int32 [vocab, topK] (topK = 8 as the official
 * `output_id_topk`), shared across prompts: row t holds the target's top-k
 * next tokens the last time t was a node of a verified tree. Draft: walk a
 * static template breadth-first, node = table[token(parent)][rank]. Update:
 * after the target ran the tree, every node's row takes the target's top-k
 * at that node (the "recycled" candidates). Both run natively
 * (native/spec/token_recycling.h); the table lives in this object's
 * Int32Array (4 MiB at a 128k vocabulary).
 *
 * Differences from the official code (docs/spec-drafters.md): rows start
 * empty (-1) instead of zeros, and an empty slot drafts nothing (the
 * official table drafts token 0 until a row fills); a slot repeating an
 * earlier slot of its row is dropped, so siblings stay distinct; top-k
 * ties go to the lower token id, and NaN / -Infinity logits are never
 * recorded; the table is int32, not int64.
 */
import { rangeError, typeError } from '../errors.js';
import { native } from '../native.js';
import { checkOptions } from '../validate.js';
import { checkContext, checkDraftTree, checkMaxNodes, checkVocab, type DraftTree, type Drafter } from './drafter.js';
import { decodeTrTable, encodeTrTable } from './token-recycling-file.js';
import { compileTemplate, TOKEN_RECYCLING_TEMPLATE, type CompiledTemplate } from './token-recycling-template.js';

export interface TokenRecyclingOptions {
  /** Vocabulary size of the target model (rows of the table). */
  vocab: number;
  /** Rank paths of the draft tree (root excluded); default TOKEN_RECYCLING_TEMPLATE (80 nodes). */
  template?: readonly (readonly number[])[];
  /** Candidates kept per token (columns of the table), in [1, 64]; default 8. */
  topK?: number;
}

export const TOKEN_RECYCLING_DEFAULTS = Object.freeze({ topK: 8 });
const OPTION_NAMES = ['vocab', 'template', 'topK'] as const;
const MAX_TOP_K = 64;

export class TokenRecyclingDrafter implements Drafter {
  readonly name = 'token-recycling';
  readonly vocab: number;
  readonly topK: number;
  /** The compiled template: parents / ranks / depths int32 [nodes], node 0 = root. */
  readonly template: CompiledTemplate;
  #table: Int32Array;
  #outTokens: Int32Array;
  #outParents: Int32Array;

  constructor(options: TokenRecyclingOptions) {
    const o = checkOptions('options', options, OPTION_NAMES);
    if (options === undefined) throw typeError('options', 'an object { vocab, template?, topK? }', options);
    this.vocab = checkVocab(o.vocab, 'options.vocab');
    const topK = o.topK ?? TOKEN_RECYCLING_DEFAULTS.topK;
    if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) {
      throw rangeError('options.topK', `an integer in [1, ${MAX_TOP_K}]`, topK);
    }
    this.topK = topK;
    this.template = compileTemplate(o.template ?? TOKEN_RECYCLING_TEMPLATE, topK, 'options.template');
    this.#table = new Int32Array(this.vocab * topK).fill(-1);
    this.#outTokens = new Int32Array(this.template.parents.length);
    this.#outParents = new Int32Array(this.template.parents.length);
  }

  /** Nodes of a full draft, root included (81 with the default template). */
  get maxNodes(): number {
    return this.template.parents.length;
  }

  /**
   * The tree rooted at context[context.length - 1] (only that token is read):
   * template nodes in order, each table[token(parent)][rank], skipping empty
   * slots (and their subtrees); at most maxNodes nodes (default: the whole template).
   */
  draft(context: Int32Array, maxNodes?: number): DraftTree {
    checkContext(context, 'context', this.vocab);
    const limit = Math.min(checkMaxNodes(maxNodes, this.maxNodes), this.maxNodes);
    const count = native().trDraft({
      table: this.#table, vocab: this.vocab, topK: this.topK, parents: this.template.parents, ranks: this.template.ranks,
      root: context[context.length - 1]!, maxNodes: limit, outTokens: this.#outTokens, outParents: this.#outParents,
    });
    return { tokens: this.#outTokens.slice(0, count), parents: this.#outParents.slice(0, count) };
  }

  /** Every node's row <- the top-topK tokens of its logits row (f32 [nodes, vocab]; ties to the lower id; NaN / -Infinity skipped). */
  update(tree: DraftTree, logits: Float32Array, vocab: number): void {
    this.#checkVocab(vocab);
    const t = checkDraftTree(tree, this.vocab, 'tree');
    if (!(logits instanceof Float32Array)) throw typeError('logits', `a Float32Array [nodes, vocab] = [${t.tokens.length}, ${this.vocab}]`, logits);
    if (logits.length !== t.tokens.length * this.vocab) {
      throw rangeError('logits', `${t.tokens.length} * ${this.vocab} = ${t.tokens.length * this.vocab} floats ([nodes, vocab])`, logits);
    }
    native().trUpdate({ table: this.#table, vocab: this.vocab, topK: this.topK, tokens: t.tokens, logits });
  }

  /**
   * The same from precomputed top-k ids [nodes, k] (k = ids.length / nodes,
   * in [1, topK]; best first; -1 = none), as a target on a GPU hands them
   * over (torch.topk indices are int64: a BigInt64Array is accepted).
   */
  updateTopK(tree: DraftTree, ids: Int32Array | BigInt64Array): void {
    const t = checkDraftTree(tree, this.vocab, 'tree');
    const nodes = t.tokens.length;
    if (!(ids instanceof Int32Array) && !(ids instanceof BigInt64Array)) throw typeError('ids', 'an Int32Array or BigInt64Array [nodes, k]', ids);
    const k = ids.length / nodes;
    if (!Number.isInteger(k) || k < 1 || k > this.topK) {
      throw rangeError('ids', `[nodes, k] = ${nodes} * k entries with k in [1, ${this.topK}]`, ids);
    }
    native().trUpdate({ table: this.#table, vocab: this.vocab, topK: this.topK, tokens: t.tokens, ids: toInt32Ids(ids, this.vocab), idsK: k });
  }

  /** A copy of the table, int32 [vocab, topK], -1 = empty slot. */
  table(): Int32Array {
    return this.#table.slice();
  }

  /** Replaces the table (int32 [vocab, topK], entries in [-1, vocab)); checked whole before anything changes. */
  setTable(table: Int32Array): void {
    if (!(table instanceof Int32Array)) throw typeError('table', `an Int32Array [vocab, topK] = [${this.vocab}, ${this.topK}]`, table);
    if (table.length !== this.#table.length) {
      throw rangeError('table', `${this.vocab} * ${this.topK} = ${this.#table.length} entries (a table of this vocab and topK)`, table);
    }
    for (let i = 0; i < table.length; i++) {
      const v = table[i]!;
      if (v < -1 || v >= this.vocab) throw rangeError(`table[${i}]`, `a token in [-1, ${this.vocab})`, v);
    }
    this.#table.set(table);
  }

  /** The table as a file (format: lib/spec/token-recycling-file.ts); 16 + 4 * vocab * topK bytes. */
  save(): Uint8Array {
    return encodeTrTable({ vocab: this.vocab, topK: this.topK, table: this.#table });
  }

  /** A drafter holding a saved table (vocab and topK from the file); a bad file throws TokenpressError ERR_BAD_FILE. */
  static load(bytes: Uint8Array, options?: { template?: readonly (readonly number[])[] }): TokenRecyclingDrafter {
    const o = checkOptions('options', options, ['template']);
    const c = decodeTrTable(bytes, MAX_TOP_K);
    const drafter = new TokenRecyclingDrafter({ vocab: c.vocab, topK: c.topK, ...(o.template !== undefined ? { template: o.template as readonly (readonly number[])[] } : {}) });
    drafter.#table.set(c.table);
    return drafter;
  }

  /** Empties every row (a cold start). */
  reset(): void {
    this.#table.fill(-1);
  }

  #checkVocab(vocab: unknown): void {
    checkVocab(vocab, 'vocab');
    if (vocab !== this.vocab) throw rangeError('vocab', `the drafter's vocab ${this.vocab}`, vocab);
  }
}

/** ids as int32; BigInt64 entries outside [-1, vocab) are refused here (they would wrap). */
function toInt32Ids(ids: Int32Array | BigInt64Array, vocab: number): Int32Array {
  if (ids instanceof Int32Array) return ids;
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (v < -1n || v >= BigInt(vocab)) throw rangeError(`ids[${i}]`, `a token in [-1, ${vocab})`, v);
    out[i] = Number(v);
  }
  return out;
}
