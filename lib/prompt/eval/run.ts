/**
 * `tokenpress eval prompt`: every method x every rate over the dataset
 * (dataset.ts), with the answers checked against the kept spans.
 *
 * Question-agnostic: a method sees the context only and compresses it once
 * per rate; the same compressed context then serves every question of that
 * context. A method with `usesQuestion` is compressed once per question, with
 * the question passed in.
 *
 * Metrics per (method, rate), over every question of every context:
 *   answersKept       share of answer spans kept whole: every non-whitespace
 *                     character of the span lies inside a kept span (the
 *                     whitespace between words may go: methods join kept
 *                     words with their own separators)
 *   answerWordsKept   mean share of the answer's words (runs of
 *                     non-whitespace) kept whole
 *   achievedRate      mean of countTokens(compressed text) / countTokens(context),
 *                     counted here with the eval's tokenizer (not the method's
 *                     own figure); meanDeviation = mean(achieved - target),
 *                     maxAbsDeviation = max |achieved - target|,
 *                     maxRelDeviation = max |achieved - target| / target
 *   mbPerSecond       UTF-8 MB (1e6 bytes) of context given to compress per
 *                     second of compress wall time (countTokens inside it
 *                     included; the eval's own counting excluded; one untimed
 *                     warm-up call per method first)
 *   msPerContext      compress wall time per context (all its questions for
 *                     a question-aware method)
 *
 * The rate is LLMLingua's: microsoft/LLMLingua, llmlingua/prompt_compressor.py,
 * compress_prompt_llmlingua2 reports origin_tokens, compressed_tokens and
 * "rate" = compressed / original, both counted with the OpenAI tokenizer
 * (tiktoken, cl100k for gpt-3.5-turbo); we count the same way with
 * gpt-tokenizer's cl100k_base. LLMLingua sums the tokens of its compressed
 * contexts one by one; we count each method's whole output text.
 */
import { rangeError, typeError } from '../../errors.js';
import { checkInteger, checkOptions } from '../../validate.js';
import type { CompressedPrompt, CountTokens, Span } from '../types.js';
import type { PromptEvalContext, PromptEvalDataset } from './dataset.js';
import { wordSpans, type PromptEvalMethod, type PromptEvalMethodKind } from './methods.js';

/** The rates: 1/2, 1/3, 1/5 of the target tokens. */
export const DEFAULT_PROMPT_EVAL_RATES: readonly number[] = [1 / 2, 1 / 3, 1 / 5];

export interface AnswerKept {
  /** Every non-whitespace character of the answer lies in a kept span. */
  whole: boolean;
  /** Words (runs of non-whitespace) of the answer. */
  words: number;
  /** Of them, those kept whole. */
  wordsKept: number;
}

/** Throws unless `kept` is an array of integer spans in [0, length], in order, non-overlapping. */
export function checkKeptSpans(arg: string, kept: unknown, length: number): asserts kept is Span[] {
  if (!Array.isArray(kept)) throw typeError(arg, 'an array of { start, end } spans', kept);
  let prevEnd = 0;
  for (let i = 0; i < kept.length; i++) {
    const s = kept[i] as Span | null;
    if (s === null || typeof s !== 'object') throw typeError(`${arg}[${i}]`, 'a { start, end } span', s);
    if (!Number.isInteger(s.start) || !Number.isInteger(s.end)) throw typeError(`${arg}[${i}]`, 'integer start and end', s.start);
    if (s.start < prevEnd || s.end < s.start || s.end > length) {
      throw rangeError(`${arg}[${i}]`, `a span in [${prevEnd}, ${length}] with start <= end (spans in order, non-overlapping)`, `[${s.start}, ${s.end})`);
    }
    prevEnd = s.end;
  }
}

/** Index of the kept span holding offset p, or -1 (kept: in order, non-overlapping). */
function spanHolding(kept: readonly Span[], p: number): number {
  let lo = 0;
  let hi = kept.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = kept[mid]!;
    if (p < s.start) hi = mid - 1;
    else if (p >= s.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** How much of `answer` (a span of `text`) the kept spans hold. */
export function answerKept(text: string, answer: Span, kept: readonly Span[]): AnswerKept {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  if (answer === null || typeof answer !== 'object' || !Number.isInteger(answer.start) || !Number.isInteger(answer.end)) {
    throw typeError('answer', 'a { start, end } span of integers', answer);
  }
  if (answer.start < 0 || answer.end < answer.start || answer.end > text.length) {
    throw rangeError('answer', `a span inside [0, ${text.length}]`, `[${answer.start}, ${answer.end})`);
  }
  checkKeptSpans('kept', kept, text.length);
  let words = 0;
  let wordsKept = 0;
  for (const w of wordSpans(text.slice(answer.start, answer.end))) {
    words++;
    let whole = true;
    for (let p = answer.start + w.start; p < answer.start + w.end && whole; p++) whole = spanHolding(kept, p) >= 0;
    if (whole) wordsKept++;
  }
  return { whole: words === wordsKept, words, wordsKept };
}

export interface PromptEvalOptions {
  /** Methods to run (default: none; the CLI passes the registry's). */
  methods: readonly PromptEvalMethod[];
  /** Target rates in (0, 1] (default DEFAULT_PROMPT_EVAL_RATES). */
  rates?: readonly number[];
  /** The target tokenizer's counter (the CLI passes cl100k's). */
  countTokens: CountTokens;
  /** Name of the tokenizer, for the report (default 'custom'). */
  tokenizer?: string;
  /** Base seed; context i gets (seed + i * 0x9e3779b9) mod 2^32 (default 0). */
  seed?: number;
  /** Called after each (method, rate, context). */
  onProgress?: (done: number, total: number, label: string) => void;
  signal?: AbortSignal;
}

export interface PromptEvalRow {
  method: string;
  kind: PromptEvalMethodKind;
  usesQuestion: boolean;
  /** Target rate. */
  rate: number;
  questions: number;
  answersKept: number;
  answerWordsKept: number;
  achievedRate: number;
  meanDeviation: number;
  maxAbsDeviation: number;
  maxRelDeviation: number;
  mbPerSecond: number;
  msPerContext: number;
}

export interface PromptEvalReport {
  kind: 'prompt-eval';
  tokenizer: string;
  questionAgnostic: string;
  dataset: {
    /** Where the text came from (the CLI fills it in). */
    source?: string;
    options: PromptEvalDataset['options'];
    contexts: number;
    questions: number;
    meanContextBytes: number;
    meanContextTokens: number;
    meanAnswerWords: number;
  };
  rates: number[];
  methods: { name: string; kind: PromptEvalMethodKind; description: string; usesQuestion: boolean }[];
  seed: number;
  rows: PromptEvalRow[];
  /** Filled in by the CLI. */
  machine?: { cpu: string; node: string };
  /** The command that reproduces the run (filled in by the CLI). */
  command?: string;
}

const KNOWN = ['methods', 'rates', 'countTokens', 'tokenizer', 'seed', 'onProgress', 'signal'];

function resolve(options: unknown) {
  const o = checkOptions('options', options, KNOWN) as Partial<PromptEvalOptions>;
  if (!Array.isArray(o.methods) || o.methods.length === 0) throw typeError('options.methods', 'a non-empty array of methods', o.methods);
  o.methods.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || typeof m.name !== 'string' || typeof m.compress !== 'function') {
      throw typeError(`options.methods[${i}]`, 'a method { name, kind, compress }', m);
    }
  });
  const rates = o.rates ?? DEFAULT_PROMPT_EVAL_RATES;
  if (!Array.isArray(rates) || rates.length === 0) throw typeError('options.rates', 'a non-empty array of rates', rates);
  rates.forEach((r, i) => {
    if (typeof r !== 'number' || !(r > 0 && r <= 1)) throw rangeError(`options.rates[${i}]`, 'a rate in (0, 1]', r);
  });
  if (typeof o.countTokens !== 'function') throw typeError('options.countTokens', 'a function (text) => number of tokens', o.countTokens);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, 0xffffffff);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  if (o.tokenizer !== undefined && typeof o.tokenizer !== 'string') throw typeError('options.tokenizer', 'a string', o.tokenizer);
  return { methods: o.methods, rates: [...rates] as number[], countTokens: o.countTokens, seed, tokenizer: o.tokenizer ?? 'custom', onProgress: o.onProgress, signal: o.signal };
}

function checkDataset(dataset: unknown): asserts dataset is PromptEvalDataset {
  const d = dataset as PromptEvalDataset | null;
  if (d === null || typeof d !== 'object' || !Array.isArray(d.contexts) || d.contexts.length === 0) {
    throw typeError('dataset', 'a dataset from buildPromptEvalDataset (non-empty contexts)', dataset);
  }
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Runs `method` at `rate` on one context; returns per-question scores, achieved rates and the compress time. */
async function evalContext(
  method: PromptEvalMethod, ctx: PromptEvalContext, rate: number, seed: number, originalTokens: number,
  countTokens: CountTokens, signal: AbortSignal | undefined,
): Promise<{ kept: AnswerKept[]; achieved: number[]; ms: number; bytes: number }> {
  const calls: { question?: string; qs: typeof ctx.questions }[] = method.usesQuestion
    ? ctx.questions.map((q) => ({ question: q.question, qs: [q] }))
    : [{ qs: ctx.questions }];
  const out = { kept: [] as AnswerKept[], achieved: [] as number[], ms: 0, bytes: 0 };
  for (const call of calls) {
    signal?.throwIfAborted();
    const t0 = performance.now();
    const r: CompressedPrompt = await method.compress(ctx.text, {
      rate, countTokens, seed, ...(signal ? { signal } : {}), ...(call.question !== undefined ? { question: call.question } : {}),
    });
    out.ms += performance.now() - t0;
    out.bytes += ctx.bytes;
    if (r === null || typeof r !== 'object' || typeof r.text !== 'string') {
      throw new TypeError(`method ${method.name}: compress returned ${r === null ? 'null' : typeof r}, expected a CompressedPrompt`);
    }
    checkKeptSpans(`method ${method.name}: result.kept`, r.kept, ctx.text.length);
    out.achieved.push(originalTokens === 0 ? 1 : countTokens(r.text) / originalTokens);
    for (const q of call.qs) out.kept.push(answerKept(ctx.text, q.answer, r.kept));
  }
  return out;
}

/** Evaluates every method at every rate on the dataset. */
export async function runPromptEval(dataset: PromptEvalDataset, options: PromptEvalOptions): Promise<PromptEvalReport> {
  checkDataset(dataset);
  const o = resolve(options);
  const ctxs = dataset.contexts;
  const originalTokens = ctxs.map((c) => o.countTokens(c.text));
  const seeds = ctxs.map((_, i) => (o.seed + Math.imul(i, 0x9e3779b9)) >>> 0);
  const total = o.methods.length * o.rates.length * ctxs.length;
  let done = 0;
  const rows: PromptEvalRow[] = [];
  for (const method of o.methods) {
    await method.prepare?.();
    // One untimed call first, so the first timed context does not pay for the JIT warming up.
    await method.compress(ctxs[0]!.text, { rate: o.rates[0]!, countTokens: o.countTokens, seed: seeds[0]!, ...(method.usesQuestion ? { question: ctxs[0]!.questions[0]!.question } : {}) });
    for (const rate of o.rates) {
      const kept: AnswerKept[] = [];
      const achieved: number[] = [];
      let ms = 0;
      let bytes = 0;
      for (let i = 0; i < ctxs.length; i++) {
        const r = await evalContext(method, ctxs[i]!, rate, seeds[i]!, originalTokens[i]!, o.countTokens, o.signal);
        kept.push(...r.kept);
        achieved.push(...r.achieved);
        ms += r.ms;
        bytes += r.bytes;
        o.onProgress?.(++done, total, `${method.name} @ ${rateLabel(rate)}`);
      }
      const dev = achieved.map((a) => a - rate);
      rows.push({
        method: method.name,
        kind: method.kind,
        usesQuestion: method.usesQuestion === true,
        rate,
        questions: kept.length,
        answersKept: mean(kept.map((k) => (k.whole ? 1 : 0))),
        answerWordsKept: mean(kept.map((k) => (k.words === 0 ? 1 : k.wordsKept / k.words))),
        achievedRate: mean(achieved),
        meanDeviation: mean(dev),
        maxAbsDeviation: Math.max(...dev.map(Math.abs)),
        maxRelDeviation: Math.max(...dev.map((d) => Math.abs(d) / rate)),
        mbPerSecond: ms > 0 ? bytes / 1e6 / (ms / 1e3) : Infinity,
        msPerContext: ms / ctxs.length,
      });
    }
  }
  const questions = ctxs.reduce((n, c) => n + c.questions.length, 0);
  return {
    kind: 'prompt-eval',
    tokenizer: o.tokenizer,
    questionAgnostic:
      'methods see the context only and compress it once per rate; the answers of all its questions are checked against the same kept spans' +
      (o.methods.some((m) => m.usesQuestion) ? ' (methods marked usesQuestion are compressed once per question, with the question)' : ''),
    dataset: {
      options: dataset.options,
      contexts: ctxs.length,
      questions,
      meanContextBytes: mean(ctxs.map((c) => c.bytes)),
      meanContextTokens: mean(originalTokens),
      meanAnswerWords: mean(ctxs.flatMap((c) => c.questions.map((q) => wordSpans(q.answerText).length))),
    },
    rates: o.rates,
    methods: o.methods.map((m) => ({ name: m.name, kind: m.kind, description: m.description, usesQuestion: m.usesQuestion === true })),
    seed: o.seed,
    rows,
  };
}

/** 0.5 -> '1/2', 1/3 -> '1/3', 0.3 -> '0.3', 1 -> '1'. */
export function rateLabel(rate: number): string {
  if (rate === 1) return '1';
  const inv = 1 / rate;
  if (Math.abs(inv - Math.round(inv)) < 1e-9) return `1/${Math.round(inv)}`;
  return String(+rate.toPrecision(4));
}

const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;

/** The report as a markdown table (with a few lines of context above it). */
export function formatPromptEvalTable(report: PromptEvalReport): string {
  const d = report.dataset;
  const out = [
    `prompt compression fidelity: ${d.contexts} contexts (mean ${Math.round(d.meanContextBytes)} bytes, ${Math.round(d.meanContextTokens)} ${report.tokenizer} tokens), ` +
      `${d.questions} questions (answer spans of mean ${d.meanAnswerWords.toFixed(1)} words), seed ${report.seed}`,
    `question-agnostic: ${report.questionAgnostic}`,
  ];
  if (report.machine) out.push(`cpu: ${report.machine.cpu}, node ${report.machine.node}`);
  out.push(
    '',
    '| method | rate | answers kept whole | answer words kept | achieved rate | mean dev | max abs dev | max rel dev | MB/s | ms/context |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of report.rows) {
    out.push(
      `| ${r.method} | ${rateLabel(r.rate)} | ${pct(r.answersKept)} | ${pct(r.answerWordsKept)} | ${r.achievedRate.toFixed(4)} | ` +
        `${r.meanDeviation >= 0 ? '+' : ''}${r.meanDeviation.toFixed(4)} | ${r.maxAbsDeviation.toFixed(4)} | ${pct(r.maxRelDeviation)} | ` +
        `${Number.isFinite(r.mbPerSecond) ? r.mbPerSecond.toFixed(2) : 'inf'} | ${r.msPerContext.toFixed(2)} |`,
    );
  }
  return out.join('\n');
}
