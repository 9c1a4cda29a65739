/**
 * `tokenpress eval kv --model <name>`: KV-cache compression on a real
 * transformer (lib/model/byte-lm.ts), measured the way NVIDIA kvpress
 * measures it (github.com/NVIDIA/kvpress: a press compresses the context's
 * cache once, right after the prefill; the question / continuation is then
 * decoded against the compressed cache and is never compressed itself;
 * compression_ratio = fraction removed, here budget = fraction kept).
 *
 * Two tasks, each on seeded held-out text (lib/model/fidelity/text.ts):
 *
 *   loss    per passage: prefill C context bytes, compress, feed the next M
 *           bytes teacher-forced; the M predictions they make (bytes
 *           C+1 .. C+M, each made through the compressed cache) are scored:
 *           bits/byte over all passages, and its change vs the full cache
 *           (mean of the per-passage differences, with its standard error).
 *   needle  per trial: a C'-byte context with "The key is <key>." early in
 *           it; compress; feed "\nThe key is <first digit>", greedy-decode
 *           the other digits; accuracy = every digit right; key bits = the
 *           digits' mean cost (-log2 p, teacher-forced), a graded signal
 *           that still moves when greedy decoding fails. Control: the full
 *           cache over the same context without the needle line.
 *
 * Budgets: keep = max(1, round(fraction * C)) tokens per KV head and layer
 * ({ keep }), as the synthetic eval; adaptive policies (pyramidkv, adakv)
 * spread the same total; razor keeps its retrieval heads whole, so its
 * `kept` can exceed the budget (reported, never hidden). int8 / int4 rows
 * keep every token and report their memory instead. Query-based policies
 * score with the queries the cache remembered from the prefill's attend()
 * (its last `window` rows); h2o uses their causal key mass (the session
 * does not accumulate mass); speckv gets draft queries from the draft model
 * (model-heads.ts); razor gets retrieval heads picked on this model.
 *
 * Sparse methods (quest, blocks, tidal; variants.ts) keep the whole f16
 * cache and select per decoded byte: the continuation and the needle's
 * question are decoded one byte per step through KvCache.attend's `sparse`
 * with budget keep (runner.ts), TidalDecode with its schedule scaled to the
 * model's layers (tidalEvalSchedule: 4 layers -> selection at 0,
 * re-selection at 2). Their `kept` is 1 (every row stays); `memory` is
 * the cache's memory before the task plus the summaries the selection
 * built (read after the task).
 *
 * Every configuration starts from the same captured prefill (context.ts),
 * so budget 100% reproduces the full-cache row exactly.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { ByteLm } from '../byte-lm.js';
import type { KvCompressionPolicy } from '../../kv/compression.js';
import { rangeError, typeError } from '../../errors.js';
import { checkInteger, checkOptions } from '../../validate.js';
import { captureContext, cachedRows, restoreSession, type CapturedContext } from './context.js';
import { argmaxRow, meanAndSe, sumBits } from './metrics.js';
import { pickModelRetrievalHeads, specKvDraftQueries, type RetrievalHeadPick } from './model-heads.js';
import { makeNeedleTrial, samplePassages, type NeedleTrial } from './text.js';
import { DEFAULT_REAL_VARIANTS, parseVariant, type RealVariant } from './variants.js';
import { StageRunner, type RunnerSession } from './runner.js';
import { sparseCacheOptions } from '../../kv/eval/sparse.js';

export const DEFAULT_REAL_BUDGETS: readonly number[] = [0.05, 0.1, 0.25, 0.5];

export const REAL_EVAL_DEFAULTS = {
  passages: 12,
  context: 3840,
  continuation: 256,
  trials: 50,
  needleContext: 4064,
  digits: 6,
  seed: 0,
  window: 32,
  lookahead: 32,
  razorPeriod: 1000,
  razorRepeats: 4,
} as const;

export interface RealKvEvalOptions {
  /** Held-out text (bytes). */
  text: Uint8Array;
  /** Fractions of the context to keep, in (0, 1]; default DEFAULT_REAL_BUDGETS. */
  budgets?: readonly number[];
  /** Variant names (variants.ts); default DEFAULT_REAL_VARIANTS. */
  policies?: readonly string[];
  /** Loss passages; 0 skips the loss task. */ passages?: number;
  /** Loss context bytes C. */ context?: number;
  /** Scored bytes M per passage. */ continuation?: number;
  /** Needle trials; 0 skips the needle task. */ trials?: number;
  /** Needle context bytes (needle included). */ needleContext?: number;
  /** Key digits. */ digits?: number;
  seed?: number;
  /** Queries the cache remembers for query-based policies. */ window?: number;
  /** SpecKV's draft model (loaded by the caller); without it speckv is skipped. */ draft?: ByteLm;
  /** SpecKV lookahead bytes. */ lookahead?: number;
  razorPeriod?: number;
  razorRepeats?: number;
  /** Called after the retrieval-head pick, each passage and each trial. */
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface RealLossCell {
  /** Tokens per head and layer the budget asked for. */
  keep: number;
  /** Rows the cache held after compression / rows of the full cache. */
  kept: number;
  /** Cache memory after compression / the full f16 cache's. */
  memory: number;
  bitsPerByte: number;
  /** Mean over passages of (this - full) bits/byte, and its standard error. */
  delta: number;
  deltaSe: number;
  bytes: number;
}

export interface RealNeedleCell {
  keep: number;
  kept: number;
  memory: number;
  accuracy: number;
  /** Mean bits per key digit (the digits after the first, teacher-forced): lower = the key is better retrieved. */
  keyBits: number;
  correct: number;
  trials: number;
}

export interface RealKvEvalRow {
  /** 'full', a policy name, 'snapkv+merge', 'int8', ... */
  policy: string;
  kind: 'full' | 'evict' | 'quant' | 'sparse';
  /** Budget fraction; null for full and quantized rows (every token kept). Sparse rows: rows attended per byte = keep. */
  fraction: number | null;
  loss?: RealLossCell;
  needle?: RealNeedleCell;
}

export interface RealKvEvalReport {
  model: {
    name: string; dir: string; parameters: number; nLayers: number; nHeads: number; nKvHeads: number; headDim: number; context: number;
    /** First 16 hex digits of weights.bin's SHA-256 (which weights the figures are from); null when unreadable. */
    weightsSha256: string | null;
    /** The card's training step and bytes, when it has them. */
    trainingStep: number | null;
    trainingTokens: number | null;
  };
  cpu: string;
  settings: {
    seed: number; budgets: number[]; policies: string[]; window: number;
    passages: number; context: number; continuation: number;
    trials: number; needleContext: number; digits: number; needleFormat: string;
    lookahead: number; draft: string | null;
  };
  budgetRule: string;
  retrievalHeads: RetrievalHeadPick | null;
  /**
   * The needle test's control: the full cache over the same contexts with the
   * needle line removed (what the model scores without the key; chance is
   * log2(10) = 3.32 bits per digit).
   */
  needleControl: { accuracy: number; keyBits: number } | null;
  /** rows[0] is the full cache; then every policy x budget, then int8 / int4. */
  rows: RealKvEvalRow[];
  skipped: { policy: string; fraction: number | null; task: 'loss' | 'needle' | 'all'; reason: string }[];
}

/** keep = max(1, round(fraction * C)), at most C. */
export function realKeepFor(fraction: number, contextBytes: number): number {
  return Math.min(contextBytes, Math.max(1, Math.round(fraction * contextBytes)));
}

function checkBudgets(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('options.budgets', 'a non-empty array of fractions in (0, 1]', value);
  return value.map((f, i) => {
    if (typeof f !== 'number' || !(f > 0 && f <= 1)) throw rangeError(`options.budgets[${i}]`, 'a fraction in (0, 1]', f);
    return f;
  });
}

/** One configuration: a variant at a budget (or the full cache). */
interface Config {
  key: string;
  policy: string;
  kind: RealKvEvalRow['kind'];
  fraction: number | null;
  variant?: RealVariant;
}

interface LossAcc { keep: number; kept: number; memory: number; bits: number; bytes: number; perPassage: number[] }
interface NeedleAcc { keep: number; kept: number; memory: number; correct: number; bits: number; trials: number }

const OPTION_NAMES = [
  'text', 'budgets', 'policies', 'passages', 'context', 'continuation', 'trials', 'needleContext', 'digits', 'seed',
  'window', 'draft', 'lookahead', 'razorPeriod', 'razorRepeats', 'onProgress',
];

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function weightsHash(dir: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(join(dir, 'weights.bin'))).digest('hex').slice(0, 16);
  } catch {
    return null;
  }
}

function cpuModel(): string {
  const c = cpus();
  return c.length > 0 ? `${c[0]!.model} (${c.length} logical CPUs)` : 'unknown CPU';
}

/** Validated options with defaults. */
function resolveOptions(model: ByteLm, options: RealKvEvalOptions) {
  const o = checkOptions('options', options, OPTION_NAMES) as unknown as RealKvEvalOptions;
  if (!(o.text instanceof Uint8Array)) throw typeError('options.text', 'the held-out text as a Uint8Array', o.text);
  const D = REAL_EVAL_DEFAULTS;
  const int = (name: keyof typeof D, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = (o as unknown as Record<string, unknown>)[name];
    return v === undefined ? D[name] : checkInteger(`options.${name}`, v, min, max);
  };
  const trained = model.config.context;
  const r = {
    budgets: o.budgets === undefined ? [...DEFAULT_REAL_BUDGETS] : checkBudgets(o.budgets),
    variants: (o.policies ?? DEFAULT_REAL_VARIANTS).map((p, i) => {
      if (typeof p !== 'string') throw typeError(`options.policies[${i}]`, 'a policy name', p);
      return parseVariant(p, `options.policies[${i}]`);
    }),
    passages: int('passages', 0, 100000),
    context: int('context', 64),
    continuation: int('continuation', 1),
    trials: int('trials', 0, 100000),
    needleContext: int('needleContext', 256),
    digits: int('digits', 2, 32),
    seed: int('seed', 0, 0xffffffff),
    window: int('window', 1, 4096),
    lookahead: int('lookahead', 1, 4096),
    razorPeriod: int('razorPeriod', 1),
    razorRepeats: int('razorRepeats', 2),
  };
  if (r.passages === 0 && r.trials === 0) throw rangeError('options.passages / options.trials', 'at least one task (passages or trials >= 1)', 0);
  if (r.passages > 0 && r.context + r.continuation > trained) {
    throw rangeError('options.context + options.continuation', `at most the model's trained context (${trained} bytes)`, r.context + r.continuation);
  }
  const needleTotal = r.needleContext + 12 + r.digits; // context + "\nThe key is d" + decoded digits
  if (r.trials > 0 && needleTotal > trained) {
    throw rangeError('options.needleContext', `at most ${trained - 12 - r.digits} (the question and key must fit the trained context of ${trained} bytes)`, r.needleContext);
  }
  if (r.razorPeriod * r.razorRepeats > trained) {
    throw rangeError('options.razorPeriod * options.razorRepeats', `at most the model's trained context (${trained} bytes)`, r.razorPeriod * r.razorRepeats);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  return { ...r, text: o.text, draft: o.draft, onProgress: o.onProgress };
}

/**
 * Runs both tasks for every variant x budget (see the module comment).
 * Argument errors throw before the model runs; a policy that cannot run at
 * some budget (or at all) is reported in `skipped`.
 */
export async function runRealKvEval(model: ByteLm, options: RealKvEvalOptions): Promise<RealKvEvalReport> {
  const o = resolveOptions(model, options);
  const c = model.config;
  const configs: Config[] = [{ key: 'full', policy: 'full', kind: 'full', fraction: null }];
  for (const v of o.variants) {
    if (v.kind === 'quant') configs.push({ key: v.name, policy: v.name, kind: 'quant', fraction: null, variant: v });
  }
  const evictConfigs: Config[] = [];
  for (const v of o.variants) {
    if (v.kind !== 'evict' && v.kind !== 'sparse') continue;
    for (const f of o.budgets) evictConfigs.push({ key: `${v.name}@${f}`, policy: v.name, kind: v.kind, fraction: f, variant: v });
  }
  const usesRazor = o.variants.some((v) => v.kind === 'evict' && v.name === 'razor');
  const usesSpec = o.variants.some((v) => v.kind === 'evict' && (v.name === 'speckv' || v.name === 'speckv+merge'));

  const total = (usesRazor ? 1 : 0) + o.passages + o.trials;
  let done = 0;
  const progress = (label: string) => o.onProgress?.(++done, total, label);
  const skipped: RealKvEvalReport['skipped'] = [];
  const skippedKeys = new Set<string>();
  const skip = (cfg: Config, task: 'loss' | 'needle' | 'all', reason: string) => {
    const id = `${cfg.key}/${task}`;
    if (skippedKeys.has(id)) return;
    skippedKeys.add(id);
    skipped.push({ policy: cfg.policy, fraction: cfg.fraction, task, reason });
  };

  const runner = await StageRunner.open(model);
  try {
    return await evaluate(runner);
  } finally {
    await runner.release();
  }

  async function evaluate(runner: StageRunner): Promise<RealKvEvalReport> {
    let heads: RetrievalHeadPick | null = null;
    if (usesRazor) {
      heads = await pickModelRetrievalHeads(model, { period: o.razorPeriod, repeats: o.razorRepeats, seed: o.seed });
      progress('retrieval heads');
    }
    const policyOf = (v: RealVariant & { kind: 'evict' }): KvCompressionPolicy =>
      v.name === 'razor' && heads ? { name: 'razor', retrievalHeads: heads.picked } : v.policy;
    const specSkip = usesSpec && !o.draft ? 'speckv needs draft queries: give a draft model (--draft <name>)' : undefined;

    /**
     * A session for cfg over the captured context, compressed; undefined when
     * the policy cannot run (recorded in skipped).
     */
    const sessionFor = (cfg: Config, cap: CapturedContext, task: 'loss' | 'needle', drafts: unknown[] | undefined): RunnerSession | undefined => {
      if (cfg.kind === 'full') return restoreSession(runner, cap, 'f16');
      if (cfg.kind === 'quant') return restoreSession(runner, cap, (cfg.variant as { dtype: 'int8' | 'int4' }).dtype);
      if (cfg.kind === 'sparse') {
        const s = restoreSession(runner, cap, 'f16');
        s.sparse = sparseCacheOptions((cfg.variant as RealVariant & { kind: 'sparse' }).spec, realKeepFor(cfg.fraction!, cap.length), cap.nLayers);
        return s;
      }
      const v = cfg.variant as RealVariant & { kind: 'evict' };
      const isSpec = v.name.startsWith('speckv');
      if (isSpec && specSkip) { skip(cfg, 'all', specSkip); return undefined; }
      const s = restoreSession(runner, cap, 'f16');
      try {
        s.cache.compress(policyOf(v), { keep: realKeepFor(cfg.fraction!, cap.length) }, isSpec ? { draftQueries: drafts as never } : undefined);
      } catch (e) {
        skip(cfg, task, e instanceof Error ? e.message : String(e));
        return undefined;
      }
      return s;
    };

    const fullRows = (cap: CapturedContext) => cap.nLayers * cap.nKvHeads * cap.length;
    const loss = new Map<string, LossAcc>();
    const needle = new Map<string, NeedleAcc>();
    const all = [...configs, ...evictConfigs];

    // Loss: passages of C + M + 1 bytes.
    if (o.passages > 0) {
      const C = o.context;
      const M = o.continuation;
      const passages = samplePassages(o.text, o.passages, C + M + 1, o.seed);
      let fullMemory = 0;
      for (let pi = 0; pi < passages.length; pi++) {
        const p = passages[pi]!;
        const ctx = p.subarray(0, C);
        const cap = await captureContext(runner, ctx, o.window);
        const drafts = usesSpec && o.draft ? await specKvDraftQueries(runner, o.draft, ctx, cap, o.lookahead) : undefined;
        const input = p.subarray(C, C + M);
        const targets = p.subarray(C + 1, C + M + 1);
        let fullBits = 0;
        for (const cfg of all) {
          const s = sessionFor(cfg, cap, 'loss', drafts);
          if (!s) continue;
          const kept = cachedRows(s) / fullRows(cap);
          let mem = s.cache.memoryBytes;
          if (cfg.kind === 'full') fullMemory = mem;
          const bits = sumBits(await s.forward(input), targets);
          if (cfg.kind === 'sparse') mem += summaryBytes(s); // the full cache's rows + the summaries the selection built
          if (cfg.kind === 'full') fullBits = bits;
          const acc = loss.get(cfg.key) ?? { keep: cfg.fraction === null ? C : realKeepFor(cfg.fraction, C), kept: 0, memory: 0, bits: 0, bytes: 0, perPassage: [] };
          acc.kept += kept;
          acc.memory += mem / fullMemory;
          acc.bits += bits;
          acc.bytes += M;
          acc.perPassage.push((bits - fullBits) / M);
          loss.set(cfg.key, acc);
        }
        progress(`loss passage ${pi + 1}/${passages.length}`);
        await tick();
      }
    }

    // Needle: trial i uses seed + i.
    const control = { correct: 0, bits: 0 };
    if (o.trials > 0) {
      let fullMemory = 0;
      for (let t = 0; t < o.trials; t++) {
        const trial = makeNeedleTrial(o.text, (o.seed + t) >>> 0, { context: o.needleContext, digits: o.digits });
        const cap = await captureContext(runner, trial.context, o.window);
        const drafts = usesSpec && o.draft ? await specKvDraftQueries(runner, o.draft, trial.context, cap, o.lookahead) : undefined;
        for (const cfg of all) {
          const s = sessionFor(cfg, cap, 'needle', drafts);
          if (!s) continue;
          const kept = cachedRows(s) / fullRows(cap);
          let mem = s.cache.memoryBytes;
          if (cfg.kind === 'full') fullMemory = mem;
          const ans = await answerNeedle(s, trial);
          if (cfg.kind === 'sparse') mem += summaryBytes(s);
          const acc = needle.get(cfg.key) ?? { keep: cfg.fraction === null ? o.needleContext : realKeepFor(cfg.fraction, o.needleContext), kept: 0, memory: 0, correct: 0, bits: 0, trials: 0 };
          acc.kept += kept;
          acc.memory += mem / fullMemory;
          acc.correct += ans.correct ? 1 : 0;
          acc.bits += ans.bits;
          acc.trials += 1;
          needle.set(cfg.key, acc);
        }
        // Control: the same context without the needle line, full cache.
        const without = new Uint8Array(trial.context.length - (trial.needleEnd - trial.needleStart));
        without.set(trial.context.subarray(0, trial.needleStart), 0);
        without.set(trial.context.subarray(trial.needleEnd), trial.needleStart);
        const ctl = await answerNeedle(restoreSession(runner, await captureContext(runner, without, o.window)), trial);
        control.correct += ctl.correct ? 1 : 0;
        control.bits += ctl.bits;
        progress(`needle trial ${t + 1}/${o.trials}`);
        await tick();
      }
    }

    const rows: RealKvEvalRow[] = [];
    for (const cfg of all) {
      const row: RealKvEvalRow = { policy: cfg.policy, kind: cfg.kind, fraction: cfg.fraction };
      const l = loss.get(cfg.key);
      if (l) {
        const n = l.perPassage.length;
        const d = meanAndSe(l.perPassage);
        row.loss = { keep: l.keep, kept: l.kept / n, memory: l.memory / n, bitsPerByte: l.bits / l.bytes, delta: d.mean, deltaSe: d.se, bytes: l.bytes };
      }
      const nd = needle.get(cfg.key);
      if (nd) row.needle = { keep: nd.keep, kept: nd.kept / nd.trials, memory: nd.memory / nd.trials, accuracy: nd.correct / nd.trials, keyBits: nd.bits / (nd.trials * (o.digits - 1)), correct: nd.correct, trials: nd.trials };
      if (row.loss || row.needle) rows.push(row);
    }
    // Full row first, then evictions, then the integer caches, then sparse methods.
    const order = (r: RealKvEvalRow) => (r.kind === 'full' ? 0 : r.kind === 'evict' ? 1 : r.kind === 'quant' ? 2 : 3);
    rows.sort((a, b) => order(a) - order(b));

    return {
      model: {
        name: c.name, dir: model.dir, parameters: model.parameters, nLayers: c.nLayers, nHeads: c.nHeads,
        nKvHeads: c.nKvHeads, headDim: c.headDim, context: c.context, weightsSha256: weightsHash(model.dir),
        trainingStep: typeof model.card.training?.step === 'number' ? model.card.training.step : null,
        trainingTokens: typeof model.card.training?.tokens === 'number' ? model.card.training.tokens : null,
      },
      cpu: cpuModel(),
      settings: {
        seed: o.seed, budgets: o.budgets, policies: o.variants.map((v) => v.name), window: o.window,
        passages: o.passages, context: o.context, continuation: o.continuation,
        trials: o.trials, needleContext: o.needleContext, digits: o.digits,
        needleFormat: 'context: "... The key is <key>.\\n ..." (at 10-30% depth); question after compression: "\\nThe key is <first digit>"; greedy-decode the rest',
        lookahead: o.lookahead, draft: o.draft ? o.draft.config.name : null,
      },
      budgetRule: 'keep = max(1, round(fraction * context bytes)) tokens per KV head and layer ({ keep }); kept / memory: what the cache really held',
      retrievalHeads: heads,
      needleControl: o.trials > 0 ? { accuracy: control.correct / o.trials, keyBits: control.bits / (o.trials * (o.digits - 1)) } : null,
      rows,
      skipped,
    };
  }
}

/**
 * Feeds the question and the answer's digits but the last, teacher-forced,
 * in one call: the rows from the question's last byte on predict the
 * answer's digits. Greedy decoding gets every digit right exactly when each
 * of those rows' argmax is the right digit (until the first miss greedy
 * feeds the same bytes), so `correct` is the greedy result; `bits` is the
 * answer's cost (-log2 p of its digits) under the model.
 */
/**
 * Bytes of the page / block summaries a sparse session's cache built (every
 * layer). Added to the cache's memory before the task: reading memoryBytes
 * after the task would also count the rows the decoded bytes appended (and
 * the capacity grown for them), which the full cache's figure does not.
 */
function summaryBytes(s: RunnerSession): number {
  let b = 0;
  for (let l = 0; l < s.cache.nLayers; l++) b += s.cache.questSummaries(l).bytes;
  return b;
}

export async function answerNeedle(s: Pick<RunnerSession, 'forward'>, trial: NeedleTrial): Promise<{ correct: boolean; bits: number }> {
  const q = trial.question.length;
  const n = trial.answer.length;
  const input = new Uint8Array(q + n - 1);
  input.set(trial.question, 0);
  input.set(trial.answer.subarray(0, n - 1), q);
  const logits = await s.forward(input);
  const rows = logits.subarray((q - 1) * 256, (q - 1 + n) * 256);
  let correct = true;
  for (let j = 0; j < n && correct; j++) correct = argmaxRow(rows, j) === trial.answer[j];
  return { correct, bits: sumBits(rows, trial.answer) };
}
