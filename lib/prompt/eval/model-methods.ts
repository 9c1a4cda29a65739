/**
 * The real prompt compressors as `tokenpress eval prompt` methods, one entry
 * each (the floors are in methods.ts):
 *
 *   llmlingua2:self-info        LLMLingua-2's rules (compressPrompt) over the
 *                               self-information of sentences under the
 *                               `main` byte LM, whole-document conditioning
 *   llmlingua2:self-info+fill   the same with fillBudget (filled to the budget)
 *   llmlingua2:self-info-word   the same over words
 *   llmlingua2:specpc           LLMLingua-2's rules over SpecPC's pooled draft
 *                               attention (specpcScorer, `draft` LM)
 *   selective-context           Selective Context (phrases, `draft` LM):
 *                               reduceRatio = 1 - rate (it drops units, so the
 *                               token rate is not its budget)
 *   llmlingua1                  LLMLingua-1's iterative compression (`draft`
 *                               LM): a byte rate per segment = rate
 *   specpc                      SpecPC's own selection (`draft` LM): capacity
 *                               = rate x the prompt's bytes
 *   bm25                        extractive sentence selection with the
 *                               question (BM25), to the token budget: the one
 *                               question-aware method (usesQuestion)
 *
 * Scorer methods score each context once (scorePrompt) and compress it at
 * every rate from those scores (compressScored), so a run costs one scoring
 * pass per context whatever the number of rates. Models load in prepare(),
 * before timing starts, and stay loaded for the process.
 */
import { ByteLm } from '../../model/byte-lm.js';
import { compressScored, scorePrompt, type ScoredPrompt } from '../llmlingua2.js';
import { selectiveContext, selfInfoScorer } from '../self-info.js';
import { specpcScorer, compressSpecPC } from '../specpc.js';
import { compressIterative } from '../iterative.js';
import { selectSentences } from '../extractive.js';
import type { CompressedPrompt, TokenScorer } from '../types.js';
import { tokenBudget, type PromptEvalMethod } from './methods.js';

/** Loads a built-in byte LM once per process. */
const models = new Map<string, Promise<ByteLm>>();
function model(name: 'main' | 'draft'): Promise<ByteLm> {
  let m = models.get(name);
  if (!m) {
    m = ByteLm.load(name, { plain: false });
    models.set(name, m);
  }
  return m;
}


/** An LLMLingua-2 method over a scorer built from a loaded model; scores memoised per context text. */
function llmlingua2Method(name: string, description: string, makeScorer: () => Promise<TokenScorer>, fillBudget = false): PromptEvalMethod {
  let scorer: TokenScorer | undefined;
  const scored = new Map<string, Promise<ScoredPrompt>>();
  return {
    name,
    kind: 'scorer',
    description,
    async prepare() {
      scorer ??= await makeScorer();
    },
    async compress(text, o): Promise<CompressedPrompt> {
      scorer ??= await makeScorer();
      let s = scored.get(text);
      if (!s) {
        s = scorePrompt(text, { scorer, signal: o.signal });
        scored.set(text, s);
      }
      const r = compressScored(await s, { rate: o.rate, countTokens: o.countTokens, fillBudget });
      return { text: r.text, kept: r.kept.map((k) => ({ start: k.start, end: k.end })), originalTokens: r.originalTokens, compressedTokens: r.compressedTokens, rate: r.rate };
    },
  };
}

/** The `main` LM's sentence self-information scorer (Selective Context's sentence level). */
const sentenceSelfInfo = async (): Promise<TokenScorer> => selfInfoScorer({ model: await model('main'), unit: 'sentence', conditioning: 'document' });

export const MODEL_PROMPT_EVAL_METHODS: readonly PromptEvalMethod[] = [
  llmlingua2Method('llmlingua2:self-info', "LLMLingua-2's rules over sentence self-information (main byte LM)", sentenceSelfInfo),
  llmlingua2Method('llmlingua2:self-info+fill', 'the same, then filled to the budget (fillBudget)', sentenceSelfInfo, true),
  llmlingua2Method('llmlingua2:self-info-word', "LLMLingua-2's rules over word self-information (main byte LM)", async () =>
    selfInfoScorer({ model: await model('main'), unit: 'word', conditioning: 'document' })),
  llmlingua2Method('llmlingua2:specpc', "LLMLingua-2's rules over SpecPC's pooled draft attention", async () => specpcScorer({ model: await model('draft') })),
  {
    name: 'selective-context',
    kind: 'scorer',
    description: 'Selective Context: phrases below the (1 - rate) percentile of self-information dropped (draft byte LM)',
    async prepare() {
      await model('draft');
    },
    compress: async (text, o) => selectiveContext(text, { model: await model('draft'), reduceRatio: 1 - o.rate, countTokens: o.countTokens }),
  },
  {
    name: 'llmlingua1',
    kind: 'scorer',
    description: "LLMLingua-1's iterative compression, byte rate per segment (draft byte LM)",
    async prepare() {
      await model('draft');
    },
    compress: async (text, o) => compressIterative(text, { model: await model('draft'), rate: o.rate, countTokens: o.countTokens, signal: o.signal }),
  },
  {
    name: 'specpc',
    kind: 'scorer',
    description: "SpecPC's selection, capacity = rate x bytes (draft byte LM)",
    async prepare() {
      await model('draft');
    },
    compress: async (text, o) => compressSpecPC(text, { model: await model('draft'), rate: o.rate, countTokens: o.countTokens }),
  },
  {
    name: 'bm25',
    kind: 'extractive',
    description: 'sentences ranked by BM25 against the question, to the token budget (question-aware)',
    usesQuestion: true,
    async compress(text, o) {
      const r = await selectSentences(o.question ?? '', text, { budgetTokens: Math.max(1, tokenBudget(o.rate, o.countTokens(text))), countTokens: o.countTokens });
      return { text: r.text, kept: r.kept.map((k) => ({ start: k.start, end: k.end })), originalTokens: r.originalTokens, compressedTokens: r.compressedTokens, rate: r.rate };
    },
  },
];
