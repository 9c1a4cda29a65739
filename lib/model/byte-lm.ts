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
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rangeError, typeError } from '../errors.js';
import { KvCache, type KvCacheOptions, type CompressReport } from '../kv/cache.js';
import type { KvCompressionPolicy } from '../kv/compression.js';
import type { KvBudget } from '../kv/stateless.js';
import { loadOrt, type OrtModule, type OrtSession, type OrtTensor } from './ort-loader.js';

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
  reference: { prompt: string; positions: number[]; logits: number[][] };
  [key: string]: unknown;
}

export interface ByteLmLoadOptions {
  /** ORT intra-op threads per session; default 1 (decode steps are small). */
  threads?: number;
  /** Load the plain graph (default true) and the stage graphs (default true). */
  plain?: boolean;
  stages?: boolean;
}

/** The built-in models, in models/lm/. */
export const BUILTIN_MODELS = ['main', 'draft'] as const;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('byte-lm: cannot find the package root (package.json next to models/)');
    dir = up;
  }
}

/** models/lm/<name> for a built-in name, else the directory given. */
export function modelDir(model: string): string {
  if (typeof model !== 'string' || model.length === 0) throw typeError('model', 'a built-in model name (main, draft) or a directory', model);
  if ((BUILTIN_MODELS as readonly string[]).includes(model)) return join(packageRoot(), 'models', 'lm', model);
  return resolve(model);
}

function camelConfig(c: Record<string, number | string>): ByteLmConfig {
  const num = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(`config.json config.${k}`, 'a number', v);
    return v;
  };
  return {
    name: String(c.name),
    vocab: num('vocab'),
    dModel: num('d_model'),
    nLayers: num('n_layers'),
    nHeads: num('n_heads'),
    nKvHeads: num('n_kv_heads'),
    headDim: num('head_dim'),
    mlpHidden: num('mlp_hidden'),
    ropeBase: num('rope_base'),
    context: num('context'),
  };
}

function toBytes(tokens: Uint8Array | readonly number[], arg = 'tokens'): Uint8Array {
  if (tokens instanceof Uint8Array) return tokens;
  if (!Array.isArray(tokens)) throw typeError(arg, 'a Uint8Array or an array of byte values', tokens);
  const out = new Uint8Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t! < 0 || t! > 255) throw rangeError(`${arg}[${i}]`, 'an integer byte value in [0, 255]', t);
    out[i] = t!;
  }
  return out;
}

export class ByteLm {
  readonly config: ByteLmConfig;
  readonly card: ByteLmCard;
  readonly dir: string;
  readonly ortVersion: string;
  readonly #ort: OrtModule;
  readonly #plain: OrtSession | undefined;
  readonly #stages: OrtSession[];

  private constructor(dir: string, card: ByteLmCard, ort: OrtModule, ortVersion: string, plain: OrtSession | undefined, stages: OrtSession[]) {
    this.dir = dir;
    this.card = card;
    this.config = camelConfig(card.config);
    this.#ort = ort;
    this.ortVersion = ortVersion;
    this.#plain = plain;
    this.#stages = stages;
  }

  /** Loads a built-in model ('main', 'draft') or a directory export.py wrote. */
  static async load(model: string, opts: ByteLmLoadOptions = {}): Promise<ByteLm> {
    const dir = modelDir(model);
    const cardPath = join(dir, 'config.json');
    if (!existsSync(cardPath)) throw rangeError('model', `a model directory with config.json (looked in ${dir})`, model);
    const card = JSON.parse(readFileSync(cardPath, 'utf8')) as ByteLmCard;
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw rangeError('options.threads', 'an integer in [1, 256]', threads);
    const { ort, version } = await loadOrt();
    const sessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
    const plain = opts.plain === false ? undefined : await ort.InferenceSession.create(join(dir, 'decoder.onnx'), sessionOptions);
    const stages: OrtSession[] = [];
    if (opts.stages !== false) {
      for (let s = 0; s < card.stages; s++) stages.push(await ort.InferenceSession.create(join(dir, `stage-${s}.onnx`), sessionOptions));
    }
    return new ByteLm(dir, card, ort, version, plain, stages);
  }

  /** Parameters (from the card). */
  get parameters(): number {
    return this.card.parameters;
  }

  /** A decoding state for the plain ORT graph (ORT's own attention over past_key_values). */
  plainSession(): PlainSession {
    if (!this.#plain) throw rangeError('plainSession', 'a model loaded with { plain: true }', false);
    return new PlainSession(this, this.#ort, this.#plain);
  }

  /** A decoding state whose attention runs in tokenpress over a KvCache (options: its KvCacheOptions). */
  session(cache: Partial<Omit<KvCacheOptions, 'nLayers' | 'nKvHeads' | 'headDim'>> = {}): LmSession {
    if (this.#stages.length === 0) throw rangeError('session', 'a model loaded with { stages: true }', false);
    const c = this.config;
    return new LmSession(this, this.#ort, this.#stages, new KvCache({ ...cache, nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim }));
  }

  async release(): Promise<void> {
    await this.#plain?.release();
    for (const s of this.#stages) await s.release();
  }
}

function idsAndPositions(ort: OrtModule, tokens: Uint8Array, start: number): { ids: OrtTensor; pos: OrtTensor } {
  const ids = new BigInt64Array(tokens.length);
  const pos = new BigInt64Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    ids[i] = BigInt(tokens[i]!);
    pos[i] = BigInt(start + i);
  }
  return { ids: new ort.Tensor('int64', ids, [1, tokens.length]), pos: new ort.Tensor('int64', pos, [1, tokens.length]) };
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

/** Decoding with tokenpress's attention over a KvCache. */
export class LmSession {
  readonly model: ByteLm;
  readonly cache: KvCache;
  /** Position of the next token (tokens seen so far; never lowered by eviction). */
  position = 0;
  readonly #ort: OrtModule;
  readonly #stages: OrtSession[];

  constructor(model: ByteLm, ort: OrtModule, stages: OrtSession[], cache: KvCache) {
    this.model = model;
    this.#ort = ort;
    this.#stages = stages;
    this.cache = cache;
  }

  /**
   * Runs tokens (T >= 1) through the model: logits f32 [T, 256] for the byte
   * after each. Appends their keys and values to the cache.
   */
  async forward(tokens: Uint8Array | readonly number[], opts: ForwardOptions = {}): Promise<Float32Array> {
    const bytes = toBytes(tokens);
    if (bytes.length === 0) throw rangeError('tokens', 'at least one token', 0);
    const { nLayers, nHeads, headDim } = this.model.config;
    const T = bytes.length;
    const { ids, pos } = idsAndPositions(this.#ort, bytes, this.position);
    let out = await this.#stages[0]!.run({ input_ids: ids, position_ids: pos });
    for (let l = 0; l < nLayers; l++) {
      const q = out.q!;
      const k = out.k!;
      const v = out.v!;
      opts.onLayer?.({ layer: l, q: q.data as Float32Array, k: k.data as Float32Array, v: v.data as Float32Array });
      this.cache.append(l, k as never, v as never);
      const attn = this.cache.attend(l, q as never).output;
      const attnT = new this.#ort.Tensor('float32', attn.data, [1, nHeads, T, headDim]);
      const feeds: Record<string, OrtTensor> = { residual: out.residual_out!, attn: attnT };
      if (l + 1 < nLayers) feeds.position_ids = pos;
      out = await this.#stages[l + 1]!.run(feeds);
    }
    this.position += T;
    return out.logits!.data as Float32Array;
  }

  /** Compresses the cache (every layer) to the budget with the policy; see KvCache.compress. */
  compress(policy: KvCompressionPolicy, budget: KvBudget): CompressReport {
    return this.cache.compress(policy, budget);
  }

  /** Native memory the cache holds now (bytes). */
  get memoryBytes(): number {
    return this.cache.memoryBytes;
  }
}

/** Decoding with ORT's own attention over past_key_values tensors (the plain graph). */
export class PlainSession {
  readonly model: ByteLm;
  position = 0;
  readonly #ort: OrtModule;
  readonly #session: OrtSession;
  #past: Record<string, OrtTensor>;

  constructor(model: ByteLm, ort: OrtModule, session: OrtSession) {
    this.model = model;
    this.#ort = ort;
    this.#session = session;
    const { nLayers, nKvHeads, headDim } = model.config;
    this.#past = {};
    for (let l = 0; l < nLayers; l++) {
      for (const kind of ['key', 'value']) this.#past[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, nKvHeads, 0, headDim]);
    }
  }

  /** Logits f32 [T, 256]; the new keys and values become part of the past. */
  async forward(tokens: Uint8Array | readonly number[]): Promise<Float32Array> {
    const bytes = toBytes(tokens);
    if (bytes.length === 0) throw rangeError('tokens', 'at least one token', 0);
    const { ids, pos } = idsAndPositions(this.#ort, bytes, this.position);
    const out = await this.#session.run({ input_ids: ids, position_ids: pos, ...this.#past });
    const { nLayers } = this.model.config;
    for (let l = 0; l < nLayers; l++) {
      for (const kind of ['key', 'value']) this.#past[`past_key_values.${l}.${kind}`] = out[`present.${l}.${kind}`]!;
    }
    this.position += bytes.length;
    return out.logits!.data as Float32Array;
  }

  /** Bytes held by the past tensors (float32). */
  get memoryBytes(): number {
    let n = 0;
    for (const t of Object.values(this.#past)) n += (t.data as Float32Array).byteLength;
    return n;
  }
}
