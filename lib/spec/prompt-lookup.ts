/**
 * Prompt lookup decoding (A. Saxena 2023, github.com/apoorvumang/prompt-lookup-decoding;
 * Hugging Face transformers' PromptLookupCandidateGenerator,
 * `prompt_lookup_num_tokens`): draft the tokens that followed an earlier
 * occurrence of the context's tail.
 *
 * Rule (transformers' one): for n = min(maxNgram, L - 1) down to 1, take the
 * last n tokens of the context (length L) and find their EARLIEST occurrence
 * at a start idx in [0, L - n) (the tail itself excluded); the draft is the
 * tokens from idx + n, at most maxTokens of them, cut at the end of the
 * context. The first n that matches wins; no match -> the root alone.
 * apoorvumang's reference function also takes the earliest match but
 * additionally skips matches that lack a full maxTokens continuation or
 * whose continuation starts inside the tail (see docs/spec-drafters.md).
 *
 * Shapes: context int32 [L]; the tree is a chain: tokens [1 + m] (root =
 * context[L - 1]), parents [-1, 0, 1, ..., m - 1]. Cost O(L * n) per draft,
 * in JS (docs/spec-drafters.md gives the time on a 32k-token context).
 */
import { rangeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import { checkContext, checkMaxNodes, type DraftTree, type Drafter } from './drafter.js';

export interface PromptLookupOptions {
  /** Longest tail n-gram tried first; default 3 (apoorvumang's; transformers defaults to 2). */
  maxNgram?: number;
  /** Most tokens proposed after the match; default 10. */
  maxTokens?: number;
}

export const PROMPT_LOOKUP_DEFAULTS = Object.freeze({ maxNgram: 3, maxTokens: 10 });

function positiveInt(arg: string, v: unknown, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw rangeError(arg, `an integer in [1, ${max}]`, v);
  return v;
}

/** Start of the earliest occurrence of context[L-n, L) at an index in [0, L - n), or -1. */
export function earliestMatch(context: Int32Array, n: number): number {
  const L = context.length;
  const first = context[L - n]!;
  outer: for (let idx = 0; idx < L - n; idx++) {
    if (context[idx] !== first) continue;
    for (let j = 1; j < n; j++) if (context[idx + j] !== context[L - n + j]) continue outer;
    return idx;
  }
  return -1;
}

export class PromptLookupDrafter implements Drafter {
  readonly name = 'prompt-lookup';
  readonly maxNgram: number;
  readonly maxTokens: number;

  constructor(options?: PromptLookupOptions) {
    const o = checkOptions('options', options, ['maxNgram', 'maxTokens']);
    this.maxNgram = positiveInt('options.maxNgram', o.maxNgram, PROMPT_LOOKUP_DEFAULTS.maxNgram, 64);
    this.maxTokens = positiveInt('options.maxTokens', o.maxTokens, PROMPT_LOOKUP_DEFAULTS.maxTokens, 4095);
  }

  /** The proposed continuation (without the root): int32 [0..maxTokens]. */
  lookup(context: Int32Array, maxTokens = this.maxTokens): Int32Array {
    checkContext(context);
    const L = context.length;
    for (let n = Math.min(this.maxNgram, L - 1); n >= 1; n--) {
      const idx = earliestMatch(context, n);
      if (idx >= 0) return context.slice(idx + n, Math.min(idx + n + maxTokens, L));
    }
    return new Int32Array(0);
  }

  /** A chain tree: the root (context's last token) then the looked-up tokens; at most maxNodes nodes (default 1 + maxTokens). */
  draft(context: Int32Array, maxNodes?: number): DraftTree {
    checkContext(context);
    const limit = checkMaxNodes(maxNodes, 1 + this.maxTokens);
    const next = this.lookup(context, Math.min(this.maxTokens, limit - 1));
    const tokens = new Int32Array(1 + next.length);
    tokens[0] = context[context.length - 1]!;
    tokens.set(next, 1);
    const parents = new Int32Array(tokens.length);
    for (let i = 0; i < parents.length; i++) parents[i] = i - 1;
    return { tokens, parents };
  }
}
