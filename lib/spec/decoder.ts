/**
 * The speculative decoding loop: drafter -> target (one pass over the whole
 * token tree) -> verification -> the target keeps only the accepted path.
 *
 *   context = prompt; target.prefill(prompt without its last token)
 *   loop:
 *     tree   = drafter.draft(context)            node 0 = context's last token (not yet run)
 *     logits = target.run(tree, positions)       [nodes, vocab]; positions = base + depth
 *     result = verify(tree, logits)              accepted path (root first) + one new token
 *     target.commit(result.acceptedNodes)        the cache keeps the path only
 *     drafter.update(tree, logits)               Token Recycling refreshes its table
 *     context += result.tokens                   (accepted drafts, then the correction / bonus)
 *
 * With a drafter that proposes nothing (the root alone) this is plain
 * decoding, one token per target call: the `none` baseline runs the same
 * code. Greedy and seeded sampling emit exactly what plain decoding emits
 * (lib/spec/verify.ts); typical acceptance is lossy and marked so.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkDraftTree, type DraftTree, type Drafter } from './drafter.js';
import { verifyGreedy, verifySampled, verifyTypical } from './verify.js';

/** The model being accelerated. It owns its KV cache. */
export interface SpecTarget {
  /** Vocabulary size: logits rows have this many entries. */
  readonly vocab: number;
  /** Runs the prompt's tokens before the first root (possibly none), at positions 0 .. n - 1. */
  prefill(tokens: Int32Array): Promise<void> | void;
  /**
   * Runs the tree in one pass: node i at positions[i] (the root at the next
   * position, each child one past its parent), attending the committed
   * tokens plus its ancestors. Returns logits f32 [nodes, vocab]: row i is
   * the distribution of the token after node i.
   */
  run(tree: DraftTree, positions: Int32Array): Promise<Float32Array> | Float32Array;
  /** Keeps, of the tree just run, only these nodes (root first, a path); drops the rest. */
  commit(acceptedNodes: Int32Array): Promise<void> | void;
}

export type SpecVerification =
  | { mode: 'greedy' }
  | { mode: 'sampled'; temperature: number; topK?: number; topP?: number; seed?: number }
  | { mode: 'typical'; temperature?: number; posteriorThreshold?: number; posteriorAlpha?: number };

export interface SpeculateOptions {
  /** Tokens to generate; default 64. */
  maxTokens?: number;
  /** default { mode: 'greedy' }. */
  verification?: SpecVerification;
  /** Most tree nodes per target call, root included; default 81 (Token Recycling's 80 + the root). */
  maxNodes?: number;
  /** Stop after emitting this token (it is emitted). */
  stopToken?: number;
  /** Called with each emitted token, in order. */
  onToken?: (token: number) => void;
  signal?: AbortSignal;
}

export interface SpecStats {
  /** Target calls in the loop (the prefill excluded). */
  targetCalls: number;
  /** Tokens emitted. */
  tokens: number;
  /** Draft nodes proposed (roots excluded) and accepted (drafts emitted: at the end of a run, drafts past maxTokens or a stop token do not count). */
  drafted: number;
  accepted: number;
  /** tokens / targetCalls: accepted drafts + the one new token per call. */
  meanAcceptedPerCall: number;
  /** targetCalls / tokens. */
  callsPerToken: number;
  /** Wall time per phase, ms. */
  ms: { prefill: number; draft: number; target: number; verify: number; commit: number; update: number; total: number };
  lossy: boolean;
}

export interface SpeculateResult {
  tokens: Int32Array;
  stats: SpecStats;
  /** Why the loop ended. */
  stop: 'maxTokens' | 'stopToken' | 'aborted';
}

const OPTION_KEYS = ['maxTokens', 'verification', 'maxNodes', 'stopToken', 'onToken', 'signal'] as const;

function checkVerification(v: unknown): SpecVerification {
  if (v === undefined) return { mode: 'greedy' };
  if (v === null || typeof v !== 'object') throw typeError('options.verification', "{ mode: 'greedy' | 'sampled' | 'typical', ... }", v);
  const mode = (v as { mode?: unknown }).mode;
  if (mode !== 'greedy' && mode !== 'sampled' && mode !== 'typical') {
    throw typeError('options.verification.mode', "'greedy', 'sampled' or 'typical'", mode);
  }
  return v as SpecVerification;
}

/** Depth-based positions: node i at base + depth(i). */
export function treePositions(tree: DraftTree, base: number): Int32Array {
  const n = tree.tokens.length;
  const pos = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const p = tree.parents[i]!;
    pos[i] = p < 0 ? base : pos[p]! + 1;
  }
  return pos;
}

/**
 * Generates from `prompt` (at least one token) with `drafter` proposing
 * trees for `target`. Returns the emitted tokens and the run's statistics.
 */
export async function speculate(target: SpecTarget, drafter: Drafter, prompt: Int32Array, options: SpeculateOptions = {}): Promise<SpeculateResult> {
  const o = checkOptions('options', options, [...OPTION_KEYS]) as SpeculateOptions;
  const maxTokens = o.maxTokens === undefined ? 64 : checkInteger('options.maxTokens', o.maxTokens, 1, 2 ** 31 - 1);
  const maxNodes = o.maxNodes === undefined ? 81 : checkInteger('options.maxNodes', o.maxNodes, 1, 4096);
  const verification = checkVerification(o.verification);
  if (o.onToken !== undefined && typeof o.onToken !== 'function') throw typeError('options.onToken', 'a function', o.onToken);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw typeError('options.signal', 'an AbortSignal', o.signal);
  const vocab = target.vocab;
  if (!(prompt instanceof Int32Array) || prompt.length === 0) throw typeError('prompt', 'a non-empty Int32Array of token ids', prompt);
  for (let i = 0; i < prompt.length; i++) {
    if (prompt[i]! < 0 || prompt[i]! >= vocab) throw rangeError(`prompt[${i}]`, `a token id in [0, ${vocab - 1}]`, prompt[i]);
  }
  if (o.stopToken !== undefined) checkInteger('options.stopToken', o.stopToken, 0, vocab - 1);

  const ms = { prefill: 0, draft: 0, target: 0, verify: 0, commit: 0, update: 0, total: 0 };
  const t0 = performance.now();
  let t = t0;
  const lap = (k: keyof typeof ms) => {
    const now = performance.now();
    ms[k] += now - t;
    t = now;
  };
  await target.prefill(prompt.subarray(0, prompt.length - 1));
  lap('prefill');

  // The context grows by whole verification results; a doubling buffer keeps it one Int32Array.
  let ctx = new Int32Array(Math.max(16, prompt.length + maxTokens + maxNodes));
  ctx.set(prompt);
  let len = prompt.length;
  const out: number[] = [];
  let targetCalls = 0, drafted = 0, accepted = 0;
  let stop: SpeculateResult['stop'] = 'maxTokens';
  let lossy = false;

  while (out.length < maxTokens) {
    if (o.signal?.aborted) {
      stop = 'aborted';
      break;
    }
    const context = ctx.subarray(0, len);
    const tree = checkDraftTree(drafter.draft(context, maxNodes), vocab, `${drafter.name}.draft()`);
    if (tree.tokens[0] !== context[len - 1]) {
      throw rangeError(`${drafter.name}.draft().tokens[0]`, `the root = the context's last token ${context[len - 1]}`, tree.tokens[0]);
    }
    if (tree.tokens.length > maxNodes) throw rangeError(`${drafter.name}.draft().tokens.length`, `at most maxNodes = ${maxNodes}`, tree.tokens.length);
    lap('draft');
    // The root sits at position len - 1: the prompt's first len - 1 tokens are committed.
    const positions = treePositions(tree, len - 1);
    const logits = await target.run(tree, positions);
    targetCalls++;
    if (!(logits instanceof Float32Array) || logits.length !== tree.tokens.length * vocab) {
      throw typeError('target.run() result', `a Float32Array of nodes x vocab = ${tree.tokens.length * vocab} logits`, logits);
    }
    lap('target');
    let result: { acceptedNodes: Int32Array; tokens: Int32Array; lossy?: boolean };
    if (verification.mode === 'greedy') result = verifyGreedy(tree, logits, vocab);
    else if (verification.mode === 'sampled') {
      const { mode: _m, ...rest } = verification;
      result = verifySampled(tree, logits, vocab, { ...rest, position: len });
    } else {
      const { mode: _m, ...rest } = verification;
      result = verifyTypical(tree, logits, vocab, rest);
    }
    lossy ||= result.lossy === true;
    lap('verify');
    // Tokens to emit now: up to maxTokens, through a stop token. The target
    // keeps the root and the accepted drafts that are followed by another
    // emitted token (the last emitted token is the next root), so after the
    // loop it holds exactly the context minus its last token.
    let emit = Math.min(result.tokens.length, maxTokens - out.length);
    let stopped = false;
    if (o.stopToken !== undefined) {
      const at = result.tokens.subarray(0, emit).indexOf(o.stopToken);
      if (at >= 0) {
        emit = at + 1;
        stopped = true;
      }
    }
    await target.commit(result.acceptedNodes.subarray(0, emit));
    lap('commit');
    drafter.update?.(tree, logits, vocab);
    lap('update');
    drafted += tree.tokens.length - 1;
    accepted += Math.min(emit, result.acceptedNodes.length - 1);

    for (const tok of result.tokens.subarray(0, emit)) {
      out.push(tok);
      if (len === ctx.length) {
        const grown = new Int32Array(ctx.length * 2);
        grown.set(ctx);
        ctx = grown;
      }
      ctx[len++] = tok;
      o.onToken?.(tok);
    }
    if (stopped) {
      stop = 'stopToken';
      break;
    }
  }
  ms.total = performance.now() - t0;
  const tokens = Int32Array.from(out);
  return {
    tokens,
    stop,
    stats: {
      targetCalls, tokens: tokens.length, drafted, accepted,
      meanAcceptedPerCall: targetCalls > 0 ? tokens.length / targetCalls : 0,
      callsPerToken: tokens.length > 0 ? targetCalls / tokens.length : 0,
      ms, lossy,
    },
  };
}
