/**
 * The model section of `npm start` (lib/cli/tour.ts): the built-in byte-level
 * transformer (models/lm/main) generates a few bytes after a built-in prompt
 * with tokenpress attention over an f16 KvCache kept under a SnapKV budget,
 * and reports tokens/s and the cache's memory against a full cache. Seconds,
 * no network; skipped with a note when onnxruntime-node is not installed.
 */
import { TokenpressError } from '../errors.js';
import { ByteLm, cardTrainingSteps } from './byte-lm.js';
import { generate, type GenerateResult } from './generate.js';

/** About 1 KiB of dictionary-style text (the kind of text the model is trained on). */
export const DEMO_PROMPT = [
  'ABANDON, v. t. To give up wholly; to forsake; to desert. ',
  'ABASE, v. t. To lower or depress; to throw or cast down; to humble. ',
  'ABATE, v. t. To beat down; to lessen in value or amount; to moderate. ',
  'ABBREVIATE, v. t. To make briefer; to shorten; to abridge by omission. ',
  'ABDICATE, v. t. To surrender or relinquish, as sovereign power. ',
  'ABERRATION, n. The act of wandering; deviation from the right path. ',
  'ABEYANCE, n. Expectation; a state of suspension or temporary inaction. ',
  'ABHOR, v. t. To shrink back with shuddering from; to regard with horror. ',
  'ABIDE, v. i. To wait; to pause; to remain stable or fixed in some state. ',
  'ABJECT, a. Cast down; sunk to a low condition; low in estimation. ',
  'ABJURE, v. t. To renounce upon oath; to forswear; to disavow. ',
  'ABLATION, n. A carrying or taking away; removal. ',
  'ABOLISH, v. t. To do away with wholly; to annul; to make void. ',
  'ABOMINABLE, a. Worthy of, or causing, abhorrence, as a thing of evil. ',
  'ABRIDGE, v. t. To make shorter; to shorten in duration; to lessen. ',
  'The key is 8351. ABANDON, v. t. ',
].join('');

export const DEMO_POLICY = 'snapkv';
export const DEMO_KEEP = 128;
export const DEMO_INTERVAL = 32;

export type LmDemo = { skipped: string } | (GenerateResult & { model: string; parameters: number; runner: string; trainingStep?: number });

export async function runLmDemo(maxTokens = 64): Promise<LmDemo> {
  let model: ByteLm;
  try {
    model = await ByteLm.load('main', { plain: false });
  } catch (e) {
    if (e instanceof TokenpressError && e.code === 'ERR_ORT_MISSING') return { skipped: e.message };
    throw e;
  }
  try {
    const r = await generate(model, DEMO_PROMPT, {
      maxTokens, temperature: 0.8, topK: 40, seed: 1, cacheDtype: 'f16',
      policy: DEMO_POLICY, budget: DEMO_KEEP, interval: DEMO_INTERVAL,
    });
    const step = cardTrainingSteps(model.card);
    return { ...r, model: model.config.name, parameters: model.parameters, runner: model.runner, ...(step !== undefined ? { trainingStep: step } : {}) };
  } finally {
    await model.release();
  }
}

const KiB = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

export function formatLmDemo(d: LmDemo): string {
  if ('skipped' in d) return `skipped: ${d.skipped}`;
  const m = d.memory;
  const text = JSON.stringify(d.text);
  return [
    `${d.model} (${(d.parameters / 1e6).toFixed(2)}M parameters${d.trainingStep !== undefined ? `, ${String(d.trainingStep)} training steps` : ''}), ` +
      `tokenpress attention over an f16 KvCache, ${m.policy} keeping ${m.keep} tokens per head (+ ${m.interval} before each compression)`,
    `prompt: ${d.promptBytes} bytes; generated (seed ${d.seed}): ${text.length > 120 ? text.slice(0, 117) + '..."' : text}`,
    `prefill ${d.prefill.tokensPerSecond.toFixed(0)} tokens/s, decode ${d.decode.tokensPerSecond.toFixed(0)} tokens/s ` +
      `(${(d.decode.ms / Math.max(1, d.decode.tokens)).toFixed(2)} ms a step)`,
    `cache: ${m.tokensKept} of ${m.tokensSeen} tokens per head kept, ${KiB(m.bytes)} vs ${KiB(m.fullBytes)} for a full cache ` +
      `(${((m.bytes / m.fullBytes) * 100).toFixed(0)}%)`,
  ].join('\n');
}
