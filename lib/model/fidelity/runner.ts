/**
 * The evaluation's own loop over a model's stage graphs (the contract in
 * lib/model/byte-lm.ts and scripts/train-lm/export.py):
 *
 *   stage 0:   input_ids, position_ids            -> residual_out, q, k, v
 *   stage l:   residual, attn, position_ids       -> residual_out, q, k, v
 *   stage L:   residual, attn                     -> logits [1, T, 256]
 *   q [1, nHeads, T, headDim], k, v [1, nKvHeads, T, headDim] (after RoPE),
 *   attn = KvCache.attend(l, q) [nHeads, T, headDim] between stages.
 *
 * It is LmSession's loop (same graphs, same cache calls, same default
 * attend options) with one difference the evaluation needs: a session can
 * start at any position. Every policy x budget continues from a cache
 * rebuilt from one captured prefill (context.ts), at position C; LmSession
 * counts its position from 0 and offers no way to set it. A test checks
 * that this loop gives LmSession's logits.
 *
 * A session with `sparse` set (the sparse methods of the evaluation) decodes
 * one byte per run, every layer attending with that option: each byte is one
 * decode step, so a method selects for every byte (TidalDecode's selection
 * layer hands its positions to the later layers of the same byte).
 */
import { join } from 'node:path';
import type { ByteLm, LayerActivations } from '../byte-lm.js';
import { KvCache, type KvCacheOptions } from '../../kv/cache.js';
import { loadOrt, type OrtModule, type OrtSession, type OrtTensor } from '../ort-loader.js';
import { rangeError } from '../../errors.js';
import type { SparseOptions } from '../../sparse/quest.js';

export class StageRunner {
  readonly model: ByteLm;
  readonly #ort: OrtModule;
  readonly #stages: OrtSession[];

  private constructor(model: ByteLm, ort: OrtModule, stages: OrtSession[]) {
    this.model = model;
    this.#ort = ort;
    this.#stages = stages;
  }

  /** Opens the model's stage graphs (one ORT thread each, as ByteLm's default). */
  static async open(model: ByteLm): Promise<StageRunner> {
    const { ort } = await loadOrt();
    const options = {
      executionProviders: ['cpu'], intraOpNumThreads: model.threads ?? 1, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', logSeverityLevel: 3,
    };
    const stages: OrtSession[] = [];
    for (let s = 0; s <= model.config.nLayers; s++) stages.push(await ort.InferenceSession.create(join(model.dir, `stage-${s}.onnx`), options));
    return new StageRunner(model, ort, stages);
  }

  /** A session over a new cache (KvCache options but the model's shape), starting at `position`. */
  session(cache: Partial<Omit<KvCacheOptions, 'nLayers' | 'nKvHeads' | 'headDim'>> = {}, position = 0): RunnerSession {
    const c = this.model.config;
    return new RunnerSession(this, new KvCache({ ...cache, nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim }), position);
  }

  /** Runs bytes at positions position .. position + T - 1 over the cache; logits f32 [T, 256]. */
  async run(cache: KvCache, position: number, bytes: Uint8Array, onLayer?: (a: LayerActivations) => void, sparse?: SparseOptions): Promise<Float32Array> {
    const ort = this.#ort;
    const { nLayers, nHeads, headDim } = this.model.config;
    const T = bytes.length;
    if (T < 1) throw rangeError('tokens.length', 'at least 1 byte', T);
    const ids = new BigInt64Array(T);
    const pos = new BigInt64Array(T);
    for (let i = 0; i < T; i++) {
      ids[i] = BigInt(bytes[i]!);
      pos[i] = BigInt(position + i);
    }
    const posT = new ort.Tensor('int64', pos, [1, T]);
    let out = await this.#stages[0]!.run({ input_ids: new ort.Tensor('int64', ids, [1, T]), position_ids: posT });
    for (let l = 0; l < nLayers; l++) {
      const q = out.q!;
      const k = out.k!;
      const v = out.v!;
      onLayer?.({ layer: l, q: q.data as Float32Array, k: k.data as Float32Array, v: v.data as Float32Array });
      cache.append(l, k as never, v as never);
      const attn = (sparse ? cache.attend(l, q as never, { sparse }) : cache.attend(l, q as never)).output;
      const attnT: OrtTensor = new ort.Tensor('float32', attn.data, [1, nHeads, T, headDim]);
      const feeds: Record<string, OrtTensor> = { residual: out.residual_out!, attn: attnT };
      if (l + 1 < nLayers) feeds.position_ids = posT;
      out = await this.#stages[l + 1]!.run(feeds);
    }
    return out.logits!.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const s of this.#stages) await s.release();
  }
}

/** A cache plus the position of its next token; forward() as LmSession's. */
export class RunnerSession {
  readonly runner: StageRunner;
  readonly cache: KvCache;
  position: number;
  /** When set: every forward decodes byte by byte, attending with this `sparse` option (see the module comment). */
  sparse: SparseOptions | undefined;

  constructor(runner: StageRunner, cache: KvCache, position: number) {
    this.runner = runner;
    this.cache = cache;
    this.position = position;
  }

  async forward(tokens: Uint8Array | readonly number[], opts: { onLayer?: (a: LayerActivations) => void } = {}): Promise<Float32Array> {
    const bytes = tokens instanceof Uint8Array ? tokens : Uint8Array.from(tokens);
    if (this.sparse) {
      const logits = new Float32Array(bytes.length * 256);
      for (let t = 0; t < bytes.length; t++) {
        this.cache.beginStep();
        logits.set(await this.runner.run(this.cache, this.position, bytes.subarray(t, t + 1), opts.onLayer, this.sparse), t * 256);
        this.position += 1;
      }
      return logits;
    }
    const logits = await this.runner.run(this.cache, this.position, bytes, opts.onLayer);
    this.position += bytes.length;
    return logits;
  }
}
