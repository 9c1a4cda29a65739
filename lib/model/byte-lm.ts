/**
 * A trained byte-level language model (scripts/train-lm/) run by
 * onnxruntime-node, two ways over the same f16 weights (models/lm/<name>/):
 *
 *   plain      decoder.onnx: one graph per step, Optimum-style
 *              past_key_values.{l}.key/value in, present.{l}.* out
 *              [1, nKvHeads, past (+ T), headDim]; ORT does the attention.
 *   tokenpress stage-0.onnx .. stage-L.onnx: ORT runs the dense parts
 *              (embedding, norms, projections, RoPE, MLP, head); between
 *              stages tokenpress appends k, v to a KvCache and attends:
 *                stage 0:   ids, positions       -> residual, q_0, k_0, v_0
 *                stage l:   residual, attn_{l-1}, positions -> residual, q_l, k_l, v_l
 *                stage L:   residual, attn_{L-1} -> logits
 *              q [1, nHeads, T, headDim], k, v [1, nKvHeads, T, headDim],
 *              attn = KvCache.attend(l, q) [nHeads, T, headDim].
 *
 * Positions: RoPE is applied inside the graphs from position_ids, so a
 * session counts positions itself; evicting cache rows never renumbers them
 * (as in kvpress). Batch size is 1.
 *
 * Speed (docs/model.md): a single-byte step reuses preallocated id, position
 * and attention tensors, attends into a preallocated output, and calls
 * onnxruntime-node's native run directly when the package keeps it where 1.x
 * does (ByteLmLoadOptions.directRun), which skips the public run's
 * setImmediate hop and output re-wrapping on each of the L + 1 graphs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rangeError, TokenpressError, typeError } from '../errors.js';
import { KvCache, type AutoCompressOptions, type KvCacheOptions, type CompressReport } from '../kv/cache.js';
import type { KvCompressionPolicy } from '../kv/compression.js';
import type { KvBudget } from '../kv/stateless.js';
import { checkBoolean, checkInteger, checkOptions } from '../validate.js';
import { loadOrt, type OrtLoaded, type OrtModule, type OrtTensor } from './ort-loader.js';
import { treePositions } from '../spec/decoder.js';

/** The model's shape (config.json "config", written by export.py). */
export interface ByteLmConfig {
  name: string;
  vocab: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  mlpHidden: number;
  ropeBase: number;
  /** Longest context trained on (bytes). */
  context: number;
}

/** config.json as export.py writes it (the model card's machine-readable part). */
export interface ByteLmCard {
  format: string;
  name: string;
  parameters: number;
  stages: number;
  config: Record<string, number | string>;
  training?: Record<string, unknown>;
  /** PyTorch logits (f16-rounded weights, f32 arithmetic) for a fixed prompt, at `positions`. */
  reference: { prompt: string; positions: number[]; logits: number[][] };
  [key: string]: unknown;
}

/**
 * Optimizer steps behind a card's weights: the sum over `phases` (export.py
 * --card, for models trained in phases such as scripts/train-lm/train-main.sh),
 * else `training.step` (the last run's own count); undefined when neither.
 */
export function cardTrainingSteps(card: ByteLmCard): number | undefined {
  const phases = card.phases;
  if (Array.isArray(phases) && phases.length > 0 && phases.every((p) => typeof (p as { steps?: unknown })?.steps === 'number')) {
    return phases.reduce((sum: number, p) => sum + (p as { steps: number }).steps, 0);
  }
  const step = (card.training as { step?: unknown } | undefined)?.step;
  return typeof step === 'number' ? step : undefined;
}

export interface ByteLmLoadOptions {
  /** ORT intra-op threads per graph; default 1 (decode steps are small). tokenpress's own pool: setThreads(). */
  threads?: number;
  /** Load the plain graph (default true). */
  plain?: boolean;
  /** Load the stage graphs (default true). */
  stages?: boolean;
  /**
   * Call onnxruntime-node's native session run directly (default true; falls
   * back to the public InferenceSession.run when the package does not have
   * it where 1.x keeps it). false: always the public API.
   */
  directRun?: boolean;
}

/** The built-in models, in models/lm/. */
export const BUILTIN_MODELS = ['main', 'draft'] as const;
export const BYTE_LM_FORMAT = 'tokenpress-byte-lm/1';
const VOCAB = 256;
const LOAD_OPTIONS = ['threads', 'plain', 'stages', 'directRun'] as const;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new TokenpressError('ERR_BAD_FILE', 'byte-lm: cannot find the package root (package.json next to models/)');
    dir = up;
  }
}

/** models/lm/<name> for a built-in name, else the directory given (resolved against the working directory). */
export function modelDir(model: string): string {
  if (typeof model !== 'string' || model.length === 0) {
    throw typeError('model', `a built-in model name (${BUILTIN_MODELS.join(', ')}) or a directory export.py wrote`, model);
  }
  if ((BUILTIN_MODELS as readonly string[]).includes(model)) return join(packageRoot(), 'models', 'lm', model);
  return resolve(model);
}

function badCard(path: string, what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `${path}: ${what}`);
}

function readCard(dir: string, model: string): ByteLmCard {
  const path = join(dir, 'config.json');
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw rangeError('model', `a built-in model name (${BUILTIN_MODELS.join(', ')}) or a directory holding config.json (looked for ${path})`, model);
  }
  let card: unknown;
  try {
    card = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw badCard(path, `not valid JSON (${(e as Error).message})`);
  }
  if (card === null || typeof card !== 'object') throw badCard(path, 'expected a JSON object');
  const c = card as Partial<ByteLmCard>;
  if (c.format !== BYTE_LM_FORMAT) throw badCard(path, `format: expected "${BYTE_LM_FORMAT}", received ${JSON.stringify(c.format)}`);
  if (c.config === null || typeof c.config !== 'object') throw badCard(path, 'config: expected an object');
  if (!Number.isInteger(c.stages)) throw badCard(path, `stages: expected an integer, received ${JSON.stringify(c.stages)}`);
  return card as ByteLmCard;
}

function camelConfig(c: Record<string, number | string>, path: string, stages: number): ByteLmConfig {
  const num = (k: string, min: number): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw badCard(path, `config.${k}: expected a number >= ${min}, received ${JSON.stringify(v)}`);
    return v;
  };
  const int = (k: string, min: number): number => {
    const v = num(k, min);
    if (!Number.isInteger(v)) throw badCard(path, `config.${k}: expected an integer, received ${v}`);
    return v;
  };
  const cfg: ByteLmConfig = {
    name: String(c.name),
    vocab: int('vocab', 1),
    dModel: int('d_model', 1),
    nLayers: int('n_layers', 1),
    nHeads: int('n_heads', 1),
    nKvHeads: int('n_kv_heads', 1),
    headDim: int('head_dim', 1),
    mlpHidden: int('mlp_hidden', 1),
    ropeBase: num('rope_base', 0),
    context: int('context', 1),
  };
  if (cfg.vocab !== VOCAB) throw badCard(path, `config.vocab: expected ${VOCAB} (a byte-level model), received ${cfg.vocab}`);
  if (cfg.nHeads % cfg.nKvHeads !== 0) throw badCard(path, `config.n_heads: expected a multiple of n_kv_heads = ${cfg.nKvHeads}, received ${cfg.nHeads}`);
  if (stages !== cfg.nLayers + 1) throw badCard(path, `stages: expected n_layers + 1 = ${cfg.nLayers + 1}, received ${stages}`);
  return cfg;
}

/** Bytes from a Uint8Array (used as is) or an array of integers in [0, 255]. */
function toBytes(tokens: unknown, arg: string): Uint8Array {
  if (tokens instanceof Uint8Array) return tokens;
  if (!Array.isArray(tokens)) throw typeError(arg, 'a Uint8Array or an array of byte values (integers in [0, 255])', tokens);
  const out = new Uint8Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 255) throw rangeError(`${arg}[${i}]`, 'an integer byte value in [0, 255]', t);
    out[i] = t;
  }
  return out;
}

/** One ORT graph, run through the native session (sync) or the public API (async). */
interface Graph {
  readonly file: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>> | Record<string, OrtTensor>;
  release(): Promise<void>;
}

async function openGraph(loaded: OrtLoaded, file: string, options: Record<string, unknown>, direct: boolean): Promise<Graph> {
  if (!existsSync(file)) throw new TokenpressError('ERR_BAD_FILE', `byte-lm: missing graph ${file}`);
  if (direct && loaded.direct) {
    const s = loaded.direct(file, options);
    const outputNames = s.outputMetadata.map((m) => m.name);
    const fetches: Record<string, null> = {};
    for (const n of outputNames) fetches[n] = null;
    const runOptions = {};
    return {
      file,
      inputNames: s.inputMetadata.map((m) => m.name),
      outputNames,
      run: (feeds) => s.run(feeds, fetches, runOptions),
      release: async () => s.dispose(),
    };
  }
  const s = await loaded.ort.InferenceSession.create(file, options);
  return { file, inputNames: s.inputNames, outputNames: s.outputNames, run: (feeds) => s.run(feeds), release: () => s.release() };
}

function checkNames(g: Graph, inputs: readonly string[], outputs: readonly string[]): void {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  if (!same(g.inputNames, inputs) || !outputs.every((o) => g.outputNames.includes(o))) {
    throw new TokenpressError(
      'ERR_BAD_FILE',
      `byte-lm: ${g.file}: expected inputs [${inputs.join(', ')}] and outputs [${outputs.join(', ')}], ` +
        `received inputs [${g.inputNames.join(', ')}] and outputs [${g.outputNames.join(', ')}] (re-export with scripts/train-lm/export.py)`,
    );
  }
}

function output(out: Record<string, OrtTensor>, name: string, length: number, where: string): OrtTensor {
  const t = out[name];
  if (!t || !(t.data instanceof Float32Array) || t.data.length !== length) {
    throw new TokenpressError('ERR_NATIVE', `byte-lm: ${where} output ${name}: expected float32 with ${length} values, received ${t ? `${t.type} [${t.dims.join(', ')}]` : 'nothing'}`);
  }
  return t;
}

function releasedError(what: string): TokenpressError {
  return new TokenpressError('ERR_RELEASED', `${what}: the model was released (ByteLm.release()); load it again`);
}

/** Session options (LmSession): the KvCache's options, less the shape the model fixes. */
export type LmSessionOptions = Partial<Omit<KvCacheOptions, 'nLayers' | 'nKvHeads' | 'headDim'>>;

export class ByteLm {
  readonly config: ByteLmConfig;
  readonly card: ByteLmCard;
  readonly dir: string;
  readonly ortVersion: string;
  /** How the graphs run: 'direct' (native session, sync) or 'public' (InferenceSession.run). */
  readonly runner: 'direct' | 'public';
  /** ORT intra-op threads per graph. */
  readonly threads: number;
  readonly #ort: OrtModule;
  readonly #plain: Graph | undefined;
  readonly #stages: Graph[];
  #released = false;

  private constructor(
    dir: string, card: ByteLmCard, config: ByteLmConfig, loaded: OrtLoaded, runner: 'direct' | 'public', threads: number,
    plain: Graph | undefined, stages: Graph[],
  ) {
    this.dir = dir;
    this.card = card;
    this.config = config;
    this.#ort = loaded.ort;
    this.ortVersion = loaded.version;
    this.runner = runner;
    this.threads = threads;
    this.#plain = plain;
    this.#stages = stages;
  }

  /**
   * Loads a built-in model ('main', 'draft') or a directory export.py wrote.
   * Throws RangeError naming `model` when there is no config.json,
   * TokenpressError ERR_BAD_FILE for a malformed card or graph, and
   * ERR_ORT_MISSING without onnxruntime-node.
   */
  static async load(model: string, opts: ByteLmLoadOptions = {}): Promise<ByteLm> {
    const o = checkOptions('options', opts, LOAD_OPTIONS) as ByteLmLoadOptions;
    const threads = o.threads === undefined ? 1 : checkInteger('options.threads', o.threads, 1, 256);
    const wantPlain = checkBoolean('options.plain', o.plain, true);
    const wantStages = checkBoolean('options.stages', o.stages, true);
    const directRun = checkBoolean('options.directRun', o.directRun, true);
    if (!wantPlain && !wantStages) throw rangeError('options', 'plain or stages (or both) left true', opts);
    const dir = modelDir(model);
    const card = readCard(dir, model);
    const cfg = camelConfig(card.config, join(dir, 'config.json'), card.stages);
    const loaded = await loadOrt();
    const direct = directRun && loaded.direct !== undefined;
    const sessionOptions = {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', logSeverityLevel: 3,
    };
    const opened: Graph[] = [];
    try {
      let plain: Graph | undefined;
      if (wantPlain) {
        plain = await openGraph(loaded, join(dir, 'decoder.onnx'), sessionOptions, direct);
        opened.push(plain);
        const past = [];
        const present = [];
        for (let l = 0; l < cfg.nLayers; l++) {
          past.push(`past_key_values.${l}.key`, `past_key_values.${l}.value`);
          present.push(`present.${l}.key`, `present.${l}.value`);
        }
        checkNames(plain, ['input_ids', 'position_ids', ...past], ['logits', ...present]);
      }
      const stages: Graph[] = [];
      if (wantStages) {
        for (let s = 0; s <= cfg.nLayers; s++) {
          const g = await openGraph(loaded, join(dir, `stage-${s}.onnx`), sessionOptions, direct);
          opened.push(g);
          stages.push(g);
          if (s === 0) checkNames(g, ['input_ids', 'position_ids'], ['residual_out', 'q', 'k', 'v']);
          else if (s < cfg.nLayers) checkNames(g, ['residual', 'attn', 'position_ids'], ['residual_out', 'q', 'k', 'v']);
          else checkNames(g, ['residual', 'attn'], ['logits']);
        }
      }
      return new ByteLm(dir, card, cfg, loaded, direct ? 'direct' : 'public', threads, plain, stages);
    } catch (e) {
      for (const g of opened) await g.release().catch(() => undefined);
      if (e instanceof TokenpressError || e instanceof TypeError || e instanceof RangeError) throw e;
      throw new TokenpressError('ERR_BAD_FILE', `byte-lm: cannot load ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Parameters (from the card). */
  get parameters(): number {
    return this.card.parameters;
  }

  get released(): boolean {
    return this.#released;
  }

  /** A decoding state for the plain ORT graph (ORT's own attention over f32 past_key_values). */
  plainSession(): PlainSession {
    if (this.#released) throw releasedError('ByteLm.plainSession');
    if (!this.#plain) throw rangeError('ByteLm.plainSession', 'a model loaded with options.plain true', false);
    return new PlainSession(this, this.#ort, this.#plain);
  }

  /**
   * A decoding state whose attention runs in tokenpress over a KvCache.
   * opts: the KvCache's options (dtype default 'f16', capacity, reserve,
   * window, groupSize, residual, device, autoCompress). autoCompress is
   * applied by the session after each forward's attention (a layer whose
   * longest head holds budget.keep + interval tokens is compressed to
   * budget.keep), so a multi-token forward always attends over all of its
   * own tokens. With h2o or ems (or adakv scoring with them) every attend
   * accumulates the keys' attention mass, which those policies score with.
   */
  session(opts: LmSessionOptions = {}): LmSession {
    if (this.#released) throw releasedError('ByteLm.session');
    if (this.#stages.length === 0) throw rangeError('ByteLm.session', 'a model loaded with options.stages true', false);
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw typeError('options', 'a KvCache options object without nLayers, nKvHeads, headDim', opts);
    for (const k of ['nLayers', 'nKvHeads', 'headDim'] as const) {
      if (k in opts) throw rangeError(`options.${k}`, `nothing (the model fixes it: ${this.config[k]})`, (opts as Record<string, unknown>)[k]);
    }
    const c = this.config;
    const shape = { nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const { autoCompress, ...rest } = opts;
    // The cache validates every option, autoCompress included (a probe cache
    // that is never used), so errors name the same arguments as KvCache's.
    if (autoCompress !== undefined) new KvCache({ ...rest, ...shape, autoCompress, reserve: 0 });
    const cache = new KvCache({ ...rest, ...shape });
    return new LmSession(this, this.#ort, this.#stages, cache, autoCompress);
  }

  /** Releases every ORT session; later calls on the model or its sessions throw ERR_RELEASED. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#plain?.release();
    for (const s of this.#stages) await s.release();
  }
}

/** input_ids and position_ids [1, T]; T = 1 reuses the session's preallocated pair. */
class Feeds {
  readonly #ort: OrtModule;
  readonly #ids1 = new BigInt64Array(1);
  readonly #pos1 = new BigInt64Array(1);
  readonly ids1: OrtTensor;
  readonly pos1: OrtTensor;

  constructor(ort: OrtModule) {
    this.#ort = ort;
    this.ids1 = new ort.Tensor('int64', this.#ids1, [1, 1]);
    this.pos1 = new ort.Tensor('int64', this.#pos1, [1, 1]);
  }

  /** ids and explicit positions [1, T] (a token tree: each node at its own position). */
  makeAt(tokens: Uint8Array, positions: Int32Array): { ids: OrtTensor; pos: OrtTensor } {
    const n = tokens.length;
    const ids = new BigInt64Array(n);
    const pos = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      ids[i] = BigInt(tokens[i]!);
      pos[i] = BigInt(positions[i]!);
    }
    return { ids: new this.#ort.Tensor('int64', ids, [1, n]), pos: new this.#ort.Tensor('int64', pos, [1, n]) };
  }

  make(tokens: Uint8Array, start: number): { ids: OrtTensor; pos: OrtTensor } {
    if (tokens.length === 1) {
      this.#ids1[0] = BigInt(tokens[0]!);
      this.#pos1[0] = BigInt(start);
      return { ids: this.ids1, pos: this.pos1 };
    }
    const n = tokens.length;
    const ids = new BigInt64Array(n);
    const pos = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      ids[i] = BigInt(tokens[i]!);
      pos[i] = BigInt(start + i);
    }
    return { ids: new this.#ort.Tensor('int64', ids, [1, n]), pos: new this.#ort.Tensor('int64', pos, [1, n]) };
  }
}

/** What forward() hands to an observer per layer (traces, retrieval-head scoring). */
export interface LayerActivations {
  layer: number;
  /** [nHeads, T, headDim] after RoPE, at positions `position` .. position + T - 1. */
  q: Float32Array;
  /** [nKvHeads, T, headDim] after RoPE. */
  k: Float32Array;
  v: Float32Array;
}

export interface ForwardOptions {
  /** Called once per layer with that layer's new q, k, v (before they reach the cache). */
  onLayer?: (a: LayerActivations) => void;
}

/** Largest position a session may reach: the cache stores positions as int32. */
const MAX_POSITION = 0x7fffffff;

function checkTokens(tokens: unknown, position: number): Uint8Array {
  const bytes = toBytes(tokens, 'tokens');
  if (bytes.length === 0) throw rangeError('tokens', 'at least one token', bytes);
  if (position + bytes.length > MAX_POSITION) throw rangeError('tokens.length', `at most ${MAX_POSITION - position} more tokens (positions are int32)`, bytes.length);
  return bytes;
}

/** Runs one forward at a time; a call while one runs throws ERR_CACHE_BUSY; a failure midway poisons the session. */
class StepGuard {
  #busy = false;
  #broken: string | undefined;

  enter(what: string, model: ByteLm): void {
    if (model.released) throw releasedError(what);
    if (this.#broken !== undefined) {
      throw new TokenpressError('ERR_NATIVE', `${what}: an earlier forward failed midway (${this.#broken}); the session holds a partial step, start a new one`);
    }
    if (this.#busy) throw new TokenpressError('ERR_CACHE_BUSY', `${what}: a forward on this session is still running; await it first`);
  }

  async run<T>(what: string, model: ByteLm, step: () => Promise<T>): Promise<T> {
    this.enter(what, model);
    this.#busy = true;
    try {
      return await step();
    } catch (e) {
      this.#broken = (e as Error).message;
      throw e;
    } finally {
      this.#busy = false;
    }
  }
}

/**
 * Whether a policy scores with the attention mass attend() accumulates
 * (H2O's heavy hitters, EMS's global score), directly or as AdaKV's scorer.
 */
function usesKeyMass(policy: KvCompressionPolicy): boolean {
  const p = policy as string | { name?: unknown; scorer?: unknown };
  const name = typeof p === 'string' ? p : p.name;
  if (name === 'h2o' || name === 'ems') return true;
  return name === 'adakv' && typeof p === 'object' && (p.scorer === 'h2o' || p.scorer === 'ems');
}

/** Decoding with tokenpress's attention over a KvCache. */
export class LmSession {
  readonly model: ByteLm;
  readonly cache: KvCache;
  readonly #ort: OrtModule;
  readonly #stages: Graph[];
  readonly #feeds: Feeds;
  readonly #auto: AutoCompressOptions | undefined;
  readonly #guard = new StepGuard();
  /** T = 1: the attention output, reused each step, and its ORT view. */
  readonly #attn1: Float32Array;
  readonly #attn1T: OrtTensor;
  readonly #attendOpts1: { out: Float32Array; accumulateMass: boolean };
  readonly #attendOpts: { accumulateMass: boolean };
  #position = 0;
  /** Nodes of the token tree forwardTree appended and commitTree has not resolved yet (0: none). */
  #treeSize = 0;

  constructor(model: ByteLm, ort: OrtModule, stages: Graph[], cache: KvCache, auto?: AutoCompressOptions) {
    this.model = model;
    this.#ort = ort;
    this.#stages = stages;
    this.cache = cache;
    this.#auto = auto;
    this.#feeds = new Feeds(ort);
    const { nHeads, headDim } = model.config;
    this.#attn1 = new Float32Array(nHeads * headDim);
    this.#attn1T = new ort.Tensor('float32', this.#attn1, [1, nHeads, 1, headDim]);
    const mass = auto !== undefined && usesKeyMass(auto.policy);
    this.#attendOpts1 = { out: this.#attn1, accumulateMass: mass };
    this.#attendOpts = { accumulateMass: mass };
  }

  /** Position of the next token (tokens seen so far; never lowered by eviction). */
  get position(): number {
    return this.#position;
  }

  /**
   * Runs tokens (T >= 1 bytes) through the model: logits f32 [T, 256] for
   * the byte after each. Appends their keys and values to the cache at
   * positions position .. position + T - 1, then applies autoCompress.
   * Argument errors change nothing.
   */
  forward(tokens: Uint8Array | readonly number[], opts: ForwardOptions = {}): Promise<Float32Array> {
    this.#guard.enter('LmSession.forward', this.model);
    const o = checkOptions('opts', opts, ['onLayer']) as ForwardOptions;
    if (o.onLayer !== undefined && typeof o.onLayer !== 'function') throw typeError('opts.onLayer', 'a function', o.onLayer);
    const bytes = checkTokens(tokens, this.#position);
    this.#checkCapacity(bytes.length);
    return this.#guard.run('LmSession.forward', this.model, () => this.#forward(bytes, o.onLayer));
  }

  /**
   * Runs a token tree (speculative decoding, lib/spec/decoder.ts): node i
   * has token tokens[i] and parent parents[i] (-1 for the root, node 0;
   * else an earlier node); it sits at position + depth(i) and attends the
   * committed tokens plus its ancestors and itself. Returns logits f32
   * [nodes, 256]. The nodes stay in the cache until commitTree keeps the
   * accepted path. Argument errors change nothing.
   */
  forwardTree(tokens: Uint8Array | readonly number[], parents: Int32Array): Promise<Float32Array> {
    this.#guard.enter('LmSession.forwardTree', this.model);
    if (this.#treeSize > 0) throw new TokenpressError('ERR_INVALID_STATE', 'LmSession.forwardTree: the previous tree is not committed yet; call commitTree first');
    if (this.#auto) throw new TokenpressError('ERR_INVALID_STATE', 'LmSession.forwardTree: not with autoCompress (a compression between the tree and its commit would drop tree nodes)');
    const bytes = checkTokens(tokens, this.#position);
    if (!(parents instanceof Int32Array) || parents.length !== bytes.length) {
      throw typeError('parents', `an Int32Array of ${bytes.length} parent indices (one per token)`, parents);
    }
    for (let i = 0; i < bytes.length; i++) {
      const p = parents[i]!;
      if (i === 0 ? p !== -1 : !(p >= 0 && p < i)) {
        throw rangeError(`parents[${i}]`, i === 0 ? '-1 (node 0 is the root)' : `an earlier node in [0, ${i - 1}]`, p);
      }
    }
    const positions = treePositions({ tokens: Int32Array.from(bytes), parents }, this.#position);
    this.#checkCapacity(bytes.length);
    return this.#guard.run('LmSession.forwardTree', this.model, async () => {
      const logits = await this.#forward(bytes, undefined, { parents, positions });
      this.#treeSize = bytes.length;
      return logits;
    });
  }

  /**
   * Keeps, of the tree forwardTree ran, the nodes `acceptedNodes` (root
   * first, ascending: a root-to-node path) and drops the others; the
   * position advances by their count.
   */
  commitTree(acceptedNodes: Int32Array): void {
    this.#guard.enter('LmSession.commitTree', this.model);
    if (this.#treeSize === 0) throw new TokenpressError('ERR_INVALID_STATE', 'LmSession.commitTree: no tree to commit; call forwardTree first');
    this.cache.commit(acceptedNodes, { treeSize: this.#treeSize });
    this.#position += acceptedNodes.length;
    this.#treeSize = 0;
  }

  #checkCapacity(n: number): void {
    const cap = this.cache.capacity;
    if (cap >= MAX_POSITION) return;
    const lengths = this.cache.lengths().data;
    let longest = 0;
    for (const len of lengths) longest = Math.max(longest, len);
    if (longest + n > cap) throw rangeError('tokens.length', `at most ${cap - longest} tokens (the cache holds ${longest} of capacity ${cap})`, n);
  }

  async #forward(bytes: Uint8Array, onLayer: ForwardOptions['onLayer'], tree?: { parents: Int32Array; positions: Int32Array }): Promise<Float32Array> {
    const { nLayers, nHeads, nKvHeads, headDim } = this.model.config;
    const T = bytes.length;
    const { ids, pos } = tree ? this.#feeds.makeAt(bytes, tree.positions) : this.#feeds.make(bytes, this.#position);
    const appendOpts = tree ? { positions: tree.positions } : undefined;
    const attendOpts = tree ? { ...this.#attendOpts, treeMask: tree.parents } : this.#attendOpts;
    const qLen = nHeads * T * headDim;
    const kvLen = nKvHeads * T * headDim;
    const stages = this.#stages;
    let out = await stages[0]!.run({ input_ids: ids, position_ids: pos });
    for (let l = 0; l < nLayers; l++) {
      const where = `stage-${l}`;
      const q = output(out, 'q', qLen, where);
      const k = output(out, 'k', kvLen, where);
      const v = output(out, 'v', kvLen, where);
      onLayer?.({ layer: l, q: q.data as Float32Array, k: k.data as Float32Array, v: v.data as Float32Array });
      this.cache.append(l, k as never, v as never, appendOpts);
      let attnT: OrtTensor;
      if (T === 1 && !tree) {
        this.cache.attend(l, q as never, this.#attendOpts1);
        attnT = this.#attn1T;
      } else {
        attnT = new this.#ort.Tensor('float32', this.cache.attend(l, q as never, attendOpts).output.data, [1, nHeads, T, headDim]);
      }
      const residual = out.residual_out!;
      if (this.model.released) throw releasedError('LmSession.forward');
      out = await stages[l + 1]!.run(l + 1 < nLayers ? { residual, attn: attnT, position_ids: pos } : { residual, attn: attnT });
    }
    if (!tree) this.#position += T;  // a tree advances on commitTree
    const logits = output(out, 'logits', T * VOCAB, `stage-${nLayers}`).data as Float32Array;
    if (this.#auto && !tree) this.#autoCompress(this.#auto);
    return logits;
  }

  /** Compresses the layers whose longest head reached keep + interval (kvpress's DecodingPress). */
  #autoCompress(a: AutoCompressOptions): void {
    const keep = a.budget.keep;
    const at = keep + (a.interval ?? 64);
    const { nLayers, nKvHeads } = this.model.config;
    const lengths = this.cache.lengths().data;
    const layers: number[] = [];
    for (let l = 0; l < nLayers; l++) {
      let longest = 0;
      for (let h = 0; h < nKvHeads; h++) longest = Math.max(longest, lengths[l * nKvHeads + h]!);
      if (longest >= at) layers.push(l);
    }
    if (layers.length > 0) this.cache.compress(a.policy, { keep }, { layers });
  }

  /** Compresses the cache (every layer) to the budget with the policy; see KvCache.compress. Positions are kept. */
  compress(policy: KvCompressionPolicy, budget: KvBudget): CompressReport {
    this.#guard.enter('LmSession.compress', this.model);
    return this.cache.compress(policy, budget);
  }

  /** Drops every cached token and restarts at position 0. */
  reset(): void {
    this.#guard.enter('LmSession.reset', this.model);
    this.cache.clear();
    this.#position = 0;
    this.#treeSize = 0;
  }

  /** Native memory the cache holds now (bytes). */
  get memoryBytes(): number {
    return this.cache.memoryBytes;
  }
}

/** Decoding with ORT's own attention over past_key_values tensors (the plain graph). */
export class PlainSession {
  readonly model: ByteLm;
  readonly #graph: Graph;
  readonly #feeds: Feeds;
  readonly #guard = new StepGuard();
  readonly #empty: Record<string, OrtTensor>;
  #past: Record<string, OrtTensor>;
  #position = 0;

  constructor(model: ByteLm, ort: OrtModule, graph: Graph) {
    this.model = model;
    this.#graph = graph;
    this.#feeds = new Feeds(ort);
    const { nLayers, nKvHeads, headDim } = model.config;
    this.#empty = {};
    for (let l = 0; l < nLayers; l++) {
      for (const kind of ['key', 'value']) this.#empty[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, nKvHeads, 0, headDim]);
    }
    this.#past = this.#empty;
  }

  /** Position of the next token (tokens seen so far). */
  get position(): number {
    return this.#position;
  }

  /** Logits f32 [T, 256]; the new keys and values become part of the past. Argument errors change nothing. */
  forward(tokens: Uint8Array | readonly number[]): Promise<Float32Array> {
    this.#guard.enter('PlainSession.forward', this.model);
    const bytes = checkTokens(tokens, this.#position);
    return this.#guard.run('PlainSession.forward', this.model, () => this.#forward(bytes));
  }

  async #forward(bytes: Uint8Array): Promise<Float32Array> {
    const { nLayers, nKvHeads, headDim } = this.model.config;
    const { ids, pos } = this.#feeds.make(bytes, this.#position);
    const feeds: Record<string, OrtTensor> = { input_ids: ids, position_ids: pos, ...this.#past };
    const out = await this.#graph.run(feeds);
    const presentLen = nKvHeads * (this.#position + bytes.length) * headDim;
    const past: Record<string, OrtTensor> = {};
    for (let l = 0; l < nLayers; l++) {
      past[`past_key_values.${l}.key`] = output(out, `present.${l}.key`, presentLen, 'decoder');
      past[`past_key_values.${l}.value`] = output(out, `present.${l}.value`, presentLen, 'decoder');
    }
    const logits = output(out, 'logits', bytes.length * VOCAB, 'decoder').data as Float32Array;
    this.#past = past;
    this.#position += bytes.length;
    return logits;
  }

  /** Drops the past and restarts at position 0. */
  reset(): void {
    this.#guard.enter('PlainSession.reset', this.model);
    this.#past = this.#empty;
    this.#position = 0;
  }

  /** Bytes held by the past tensors (float32). */
  get memoryBytes(): number {
    let n = 0;
    for (const t of Object.values(this.#past)) n += (t.data as Float32Array).byteLength;
    return n;
  }
}
