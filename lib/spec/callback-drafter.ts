/**
 * Bring-your-own drafter: wraps a function (a small draft model, an n-gram
 * server, a trie) as a Drafter. Every tree it returns is validated
 * (checkDraftTree): equal lengths, parents[0] = -1, parents[i] in [0, i),
 * tokens in [0, vocab), distinct siblings, the root equal to the context's
 * last token, at most maxNodes nodes. Errors name the drafter and the field,
 * e.g. `drafter "mine" result.tokens[3]: expected a token in [0, 300), received 999`.
 */
import { rangeError, typeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import { checkContext, checkDraftTree, checkMaxNodes, checkVocab, MAX_VOCAB, type DraftTree, type Drafter } from './drafter.js';

/** What a draft callback returns; plain integer arrays are accepted and converted. */
export interface DraftTreeLike {
  tokens: Int32Array | readonly number[];
  parents: Int32Array | readonly number[];
}

/** (context int32 [L], maxNodes) -> a tree rooted at context[L - 1] with at most maxNodes nodes. Synchronous. */
export type DraftCallback = (context: Int32Array, maxNodes: number) => DraftTreeLike;

export interface CallbackDrafterOptions {
  /** Checks tokens against [0, vocab); default 2^24 (any token id the drafters accept). */
  vocab?: number;
  /** Called after verification with the target's logits f32 [nodes, vocab] (see Drafter.update). */
  update?: (tree: DraftTree, logits: Float32Array, vocab: number) => void;
}

/** The default maxNodes passed to the callback (MAX_TREE_NODES of the tree-attention kernels). */
export const CALLBACK_DEFAULT_MAX_NODES = 4096;

export function callbackDrafter(name: string, fn: DraftCallback, options?: CallbackDrafterOptions): Drafter {
  if (typeof name !== 'string' || name.length === 0) throw typeError('name', 'a non-empty string', name);
  if (typeof fn !== 'function') throw typeError('fn', 'a function (context, maxNodes) => { tokens, parents }', fn);
  const o = checkOptions('options', options, ['vocab', 'update']);
  const vocab = o.vocab === undefined ? MAX_VOCAB : checkVocab(o.vocab, 'options.vocab');
  if (o.update !== undefined && typeof o.update !== 'function') throw typeError('options.update', 'a function (tree, logits, vocab) => void', o.update);
  const at = `drafter ${JSON.stringify(name)} result`;
  const drafter: Drafter = {
    name,
    draft(context: Int32Array, maxNodes?: number): DraftTree {
      checkContext(context, 'context', o.vocab === undefined ? undefined : vocab);
      const limit = checkMaxNodes(maxNodes, CALLBACK_DEFAULT_MAX_NODES);
      const out: unknown = fn(context, limit);
      if (out instanceof Promise || (out !== null && typeof out === 'object' && typeof (out as { then?: unknown }).then === 'function')) {
        throw typeError(at, 'a tree { tokens, parents } (draft is synchronous)', 'a Promise');
      }
      const tree = checkDraftTree(out, vocab, at);
      if (tree.tokens.length > limit) throw rangeError(`${at}.tokens`, `at most maxNodes = ${limit} nodes`, tree.tokens);
      const root = context[context.length - 1]!;
      if (tree.tokens[0] !== root) throw rangeError(`${at}.tokens[0]`, `the root = the context's last token ${root}`, tree.tokens[0]);
      return tree;
    },
  };
  if (o.update !== undefined) {
    const update = o.update as NonNullable<CallbackDrafterOptions['update']>;
    drafter.update = (tree, logits, v) => update(checkDraftTree(tree, vocab, 'tree'), logits, v);
  }
  return drafter;
}
