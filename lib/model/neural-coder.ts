/**
 * The trained byte LM (lib/model/byte-lm.ts, run by onnxruntime-node) as the
 * arithmetic coders' model: next-byte probabilities = softmax of its logits.
 *
 *   - `NeuralByteModel.callback`: a ModelCallback for EqualInfoTokenizer
 *     (contexts -> one row of 256 probabilities per context; the context
 *     restarts at every window, so contexts are short).
 *   - `compressNeural` / `decompressNeural`: plain coding of a whole document
 *     with the full context (no windows), through a JavaScript range coder
 *     (lib/coding/js-range-coder.ts).
 *
 * Determinism. The coders need the same probabilities for the same context
 * on the encoding and the decoding side, bit for bit. A decoder can only run
 * the model one byte at a time, and a batched or multi-row call (a prefill of
 * T bytes, a batch of contexts) does not give bit-identical floats to T
 * single-byte calls in general. So every row comes from ONE fixed computation
 * path, a function of the context alone (the "schedule"):
 *
 *   view := [startByte]                 one call, T = 1 (default: no start byte, view := [])
 *   for each context byte b:
 *     if |view| < L: forward([b])       T = 1, in the same ORT session
 *     else:          view := last K-1 bytes of view + [b], a fresh session,
 *                    forward(view)      one call, T = K = floor(L / 2)
 *   row := softmax of the last logits row (float64)
 *
 * The empty context (a window's or a document's first byte) has no logits
 * without a start byte: it gets the model's stationary byte distribution
 * (firstByte 'stationary', the default): the fixed point of the chain whose
 * transition rows are the model's rows after each single byte, by 200 power
 * iterations from the uniform row in float64 (a fixed, deterministic
 * computation; 256 one-byte calls, once per model). The first byte of a
 * window sits at an arbitrary text position, so this marginal fits it far
 * better than a row "after a space".
 *
 * L is the context limit (default: the model's trained context, config.context).
 * Past L the model restarts from the last half ("re-prefill the last half"),
 * so a byte always sees between K - 1 and L - 1 bytes before it; encoder and
 * decoder make exactly the same calls. The ORT graph is the plain one
 * (decoder.onnx, ORT's own attention) with one intra-op thread; a row does not
 * depend on how contexts are batched, which contexts came before, or whether
 * it came from the memo. It may depend on the ORT build and the CPU's SIMD
 * path (float rounding), so a payload is portable to machines that run the
 * same ORT kernels; the native side quantizes the probabilities with one
 * integer rule, so the same floats always give the same tokens.
 *
 * Efficiency for Equal-Info windows: a context usually extends the previous
 * round's context by one byte (the encoder's one window, or every window of
 * a parallel decode), so the session that computed a context is kept, keyed
 * by the context bytes, and the next round extends it with one T = 1 call.
 * Rows of short contexts (<= memoMaxLength bytes) are memoized (bounded,
 * least recently used first out): window starts repeat across windows. A
 * context with neither a live parent session nor a memo row is replayed
 * from the start along the schedule.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { toBytes } from '../coding/tokenizer.js';
import { JsRangeDecoder, JsRangeEncoder, quantizeProbabilities } from '../coding/js-range-coder.js';
import type { ModelCallback } from '../coding/equal-info.js';
import { ByteLm, type ByteLmConfig, type PlainSession } from './byte-lm.js';

export interface NeuralByteModelOptions {
  /**
   * A byte the model sees before every context (window start, document
   * start), or null (default): none. The model has no begin-of-text symbol
   * and is trained on text cut at random offsets; with a start byte every
   * window is predicted "after" it (after a space, the model expects a word
   * start, which costs more than no start byte on most positions).
   */
  startByte?: number | null;
  /**
   * Without a start byte, the row of the empty context: 'stationary'
   * (default; the model's stationary byte distribution, see above) or
   * 'uniform' (8 bits per first byte).
   */
  firstByte?: 'stationary' | 'uniform';
  /** Context limit L in bytes (the sliding schedule above), in [2, config.context]. Default config.context. */
  contextLimit?: number;
  /** Rows memoized for short contexts (2 KiB each); 0 turns the memo off. Default 8192 (16 MiB). */
  memoRows?: number;
  /** Longest context whose row is memoized. Default 16. */
  memoMaxLength?: number;
}

const OPTION_NAMES = ['startByte', 'firstByte', 'contextLimit', 'memoRows', 'memoMaxLength'] as const;
const FIRST_BYTE = ['stationary', 'uniform'] as const;
/** Power iterations for the stationary row (fixed: the row must be the same computation every time). */
export const STATIONARY_ITERATIONS = 200;

/** Counters since the model was made (for benchmarks and tests; they never change a row). */
export interface NeuralCoderStats {
  /** Rows handed out through probabilities() / the callback (one per context). */
  rows: number;
  /** ORT runs, and the bytes they were given (T summed). */
  forwardCalls: number;
  forwardBytes: number;
  /** Rows answered from the memo. */
  memoHits: number;
  /** Contexts that extended a live session by one byte. */
  extended: number;
  /** Contexts replayed from the start (no live parent session, no memo row). */
  replayed: number;
  /** Restarts at the context limit (the sliding schedule). */
  slides: number;
}

/** Softmax of logits[offset .. offset + 256) in float64: the probabilities the coders get. */
export function softmaxRow(logits: ArrayLike<number>, offset = 0, out = new Float64Array(256)): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < 256; j++) max = Math.max(max, logits[offset + j]!);
  if (!Number.isFinite(max)) throw rangeError('logits', 'finite values', max);
  let sum = 0;
  for (let j = 0; j < 256; j++) {
    const e = Math.exp(logits[offset + j]! - max);
    out[j] = e;
    sum += e;
  }
  for (let j = 0; j < 256; j++) out[j]! /= sum;
  return out;
}

const UNIFORM_ROW = new Float64Array(256).fill(1 / 256);

/** One model state along the schedule: the bytes in the model's view and the row after them. */
class ScheduleState {
  /** The bytes the session holds, oldest first (length <= limit). */
  view: Uint8Array;
  length = 0;
  /** Probabilities of the next byte. */
  row: Float64Array = UNIFORM_ROW;
  session: PlainSession | null = null;

  constructor(limit: number) {
    this.view = new Uint8Array(limit);
  }
}

/** Logits of a model run: f32 [T, 256]; the checks guard against a model that is not a byte LM. */
function lastRow(logits: Float32Array, t: number): Float64Array {
  if (!(logits instanceof Float32Array) || logits.length !== t * 256) {
    throw rangeError('model logits', `a Float32Array of ${t} x 256`, logits);
  }
  return softmaxRow(logits, (t - 1) * 256);
}

export class NeuralByteModel {
  readonly lm: ByteLm;
  readonly config: ByteLmConfig;
  readonly startByte: number | null;
  readonly firstByte: 'stationary' | 'uniform';
  readonly contextLimit: number;
  readonly memoRows: number;
  readonly memoMaxLength: number;
  /**
   * The ModelCallback for EqualInfoTokenizer (bound; calls are serialized, so
   * one model may serve several tokenizers at once).
   */
  readonly callback: ModelCallback;
  readonly #stats: NeuralCoderStats = { rows: 0, forwardCalls: 0, forwardBytes: 0, memoHits: 0, extended: 0, replayed: 0, slides: 0 };
  readonly #memo = new Map<string, Float64Array>();
  /** Sessions of the last round of contexts, keyed by the context (latin1 string of its bytes). */
  #live = new Map<string, ScheduleState>();
  #queue: Promise<unknown> = Promise.resolve();
  #stationary: Promise<Float64Array> | null = null;

  /**
   * Wraps a loaded ByteLm (its plain graph is used; load it with threads: 1,
   * ByteLm.load's default, so every run takes one fixed path).
   */
  constructor(lm: ByteLm, options?: NeuralByteModelOptions) {
    if (lm === null || typeof lm !== 'object' || typeof (lm as ByteLm).plainSession !== 'function' || typeof (lm as ByteLm).config !== 'object') {
      throw typeError('lm', 'a ByteLm (ByteLm.load or NeuralByteModel.load)', lm);
    }
    const o = checkOptions('options', options, OPTION_NAMES);
    this.lm = lm;
    this.config = lm.config;
    if (this.config.vocab !== 256) throw rangeError('lm.config.vocab', 'a byte-level model (vocab 256)', this.config.vocab);
    this.startByte = o.startByte === undefined || o.startByte === null ? null : checkInteger('options.startByte', o.startByte, 0, 255);
    if (o.firstByte !== undefined && !FIRST_BYTE.includes(o.firstByte as 'uniform')) {
      throw rangeError('options.firstByte', "'stationary' or 'uniform'", o.firstByte);
    }
    this.firstByte = (o.firstByte as 'stationary' | 'uniform' | undefined) ?? 'stationary';
    this.contextLimit = o.contextLimit === undefined ? this.config.context : checkInteger('options.contextLimit', o.contextLimit, 2, this.config.context);
    this.memoRows = o.memoRows === undefined ? 8192 : checkInteger('options.memoRows', o.memoRows, 0, 1 << 20);
    this.memoMaxLength = o.memoMaxLength === undefined ? 16 : checkInteger('options.memoMaxLength', o.memoMaxLength, 0, 1 << 16);
    this.callback = (contexts) => this.probabilities(contexts);
  }

  /** Loads a built-in model ('main', 'draft') or a model directory with one ORT thread, plain graph only. */
  static async load(model: string, options?: NeuralByteModelOptions): Promise<NeuralByteModel> {
    const lm = await ByteLm.load(model, { threads: 1, plain: true, stages: false });
    return new NeuralByteModel(lm, options);
  }

  /** A copy of the counters. */
  get stats(): NeuralCoderStats {
    return { ...this.#stats };
  }

  /**
   * Next-byte probabilities for a batch of contexts: Float64Array
   * [contexts.length x 256], each row summing to 1 (within rounding). The row
   * of a context is a function of its bytes alone (see the schedule above).
   */
  probabilities(contexts: readonly Uint8Array[]): Promise<Float64Array> {
    if (!Array.isArray(contexts)) return Promise.reject(typeError('contexts', 'an array of Uint8Arrays', contexts));
    for (let i = 0; i < contexts.length; i++) {
      if (!(contexts[i] instanceof Uint8Array)) return Promise.reject(typeError(`contexts[${i}]`, 'a Uint8Array', contexts[i]));
    }
    const run = this.#queue.then(() => this.#rows(contexts));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Drops the memo and the live sessions (the rows stay the same; only speed changes). */
  clear(): void {
    this.#memo.clear();
    this.#live = new Map();
  }

  async #rows(contexts: readonly Uint8Array[]): Promise<Float64Array> {
    const out = new Float64Array(contexts.length * 256);
    const next = new Map<string, ScheduleState>();
    for (let i = 0; i < contexts.length; i++) {
      out.set(await this.#row(contexts[i]!, next), i * 256);
    }
    this.#live = next;
    this.#stats.rows += contexts.length;
    return out;
  }

  /** The row of one context: extend a live parent, else the memo, else replay. */
  async #row(context: Uint8Array, next: Map<string, ScheduleState>): Promise<Float64Array> {
    const n = context.length;
    const key = keyOf(context, n);
    if (n === 0 && this.startByte === null) return this.#emptyRow();
    const parentKey = n === 0 ? null : keyOf(context, n - 1);
    const parent = parentKey === null ? undefined : this.#live.get(parentKey);
    let state: ScheduleState;
    if (parent !== undefined) {
      this.#live.delete(parentKey!);
      state = parent;
      await this.#push(state, context[n - 1]!);
      this.#stats.extended++;
    } else {
      const memo = this.#memoGet(key);
      if (memo !== undefined) return memo;
      state = await this.#begin();
      if (n > 0) {
        if (this.startByte !== null) this.#memoPut('', 0, state.row);
        for (let i = 0; i < n; i++) {
          await this.#push(state, context[i]!);
          if (i + 1 < n) this.#memoPut(keyOf(context, i + 1), i + 1, state.row);
        }
        this.#stats.replayed++;
      }
    }
    this.#memoPut(key, n, state.row);
    if (!next.has(key)) next.set(key, state);
    return state.row;
  }

  #memoGet(key: string): Float64Array | undefined {
    const row = this.#memo.get(key);
    if (row !== undefined) {
      this.#memo.delete(key); // refresh: least recently used leaves first
      this.#memo.set(key, row);
      this.#stats.memoHits++;
    }
    return row;
  }

  #memoPut(key: string, length: number, row: Float64Array): void {
    if (this.memoRows === 0 || length > this.memoMaxLength || this.#memo.has(key)) return;
    if (this.#memo.size >= this.memoRows) this.#memo.delete(this.#memo.keys().next().value!);
    this.#memo.set(key, row);
  }

  /** The row of the empty context without a start byte (computed once per model; clear() keeps it). */
  #emptyRow(): Promise<Float64Array> | Float64Array {
    if (this.firstByte === 'uniform') return UNIFORM_ROW;
    this.#stationary ??= this.#computeStationary().catch((e: unknown) => {
      this.#stationary = null; // a failed run (an ORT error) is not cached
      throw e;
    });
    return this.#stationary;
  }

  /**
   * The stationary distribution of the chain P[a][b] = row after the single
   * byte a (each row: a fresh session, forward([a]), T = 1: the schedule's own
   * row of context [a], memoized as such), by STATIONARY_ITERATIONS power
   * iterations pi <- pi P from the uniform row, float64, fixed order.
   */
  async #computeStationary(): Promise<Float64Array> {
    const p = new Float64Array(256 * 256);
    for (let a = 0; a < 256; a++) {
      const ctx = Uint8Array.of(a);
      const row = await this.#forward(this.lm.plainSession(), ctx);
      this.#memoPut(keyOf(ctx, 1), 1, row);
      p.set(row, a * 256);
    }
    let pi = new Float64Array(256).fill(1 / 256);
    for (let it = 0; it < STATIONARY_ITERATIONS; it++) {
      const next = new Float64Array(256);
      for (let a = 0; a < 256; a++) {
        const w = pi[a]!;
        for (let b = 0; b < 256; b++) next[b]! += w * p[a * 256 + b]!;
      }
      let sum = 0;
      for (let b = 0; b < 256; b++) sum += next[b]!;
      for (let b = 0; b < 256; b++) next[b]! /= sum;
      pi = next;
    }
    return pi;
  }

  /** The state of the empty context: [startByte] in a fresh session, or no session and the empty row. */
  async #begin(): Promise<ScheduleState> {
    const state = new ScheduleState(this.contextLimit);
    if (this.startByte === null) {
      state.row = await this.#emptyRow();
      return state;
    }
    state.session = this.lm.plainSession();
    state.view[0] = this.startByte;
    state.length = 1;
    state.row = await this.#forward(state.session, state.view.subarray(0, 1));
    return state;
  }

  /** One schedule step: the row after `byte` (T = 1, or the re-prefill at the limit). */
  async #push(state: ScheduleState, byte: number): Promise<void> {
    const limit = this.contextLimit;
    if (state.session !== null && state.length < limit) {
      state.view[state.length++] = byte;
      state.row = await this.#forward(state.session, state.view.subarray(state.length - 1, state.length));
      return;
    }
    if (state.session === null) {
      // No start byte and nothing seen yet.
      state.session = this.lm.plainSession();
      state.view[0] = byte;
      state.length = 1;
      state.row = await this.#forward(state.session, state.view.subarray(0, 1));
      return;
    }
    const keep = Math.floor(limit / 2) - 1;
    state.view.copyWithin(0, state.length - keep, state.length);
    state.view[keep] = byte;
    state.length = keep + 1;
    state.session = this.lm.plainSession();
    this.#stats.slides++;
    state.row = await this.#forward(state.session, state.view.subarray(0, state.length));
  }

  async #forward(session: PlainSession, bytes: Uint8Array): Promise<Float64Array> {
    this.#stats.forwardCalls++;
    this.#stats.forwardBytes += bytes.length;
    // forward() reads the bytes before its first await; the view may change afterwards.
    return lastRow(await session.forward(bytes), bytes.length);
  }

  /** Plain coding state for one document (full context along the schedule); not shared with the window sessions. */
  async startDocument(): Promise<DocumentCursor> {
    const state = await this.#begin();
    return new DocumentCursor(state, (s, b) => this.#push(s, b));
  }
}

/** Walks one document along the schedule: `row` predicts the next byte, `advance(b)` moves past it. */
export class DocumentCursor {
  readonly #state: ScheduleState;
  readonly #push: (s: ScheduleState, b: number) => Promise<void>;

  constructor(state: ScheduleState, push: (s: ScheduleState, b: number) => Promise<void>) {
    this.#state = state;
    this.#push = push;
  }

  get row(): Float64Array {
    return this.#state.row;
  }

  async advance(byte: number): Promise<void> {
    await this.#push(this.#state, byte);
  }
}

function keyOf(bytes: Uint8Array, n: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1');
}

function modelArg(model: unknown): NeuralByteModel {
  if (!(model instanceof NeuralByteModel)) throw typeError('model', 'a NeuralByteModel', model);
  return model;
}

/** What compressNeural measured on the way (the payload alone is what a decoder needs, with the length). */
export interface NeuralCompressed {
  payload: Uint8Array;
  /** Ideal code length -log2 p of the bytes under the model's float64 rows (what the coder approaches). */
  modelBits: number;
}

/**
 * Plain coding of one document (no windows): every byte coded with the row
 * its whole preceding text gives (sliding past the context limit). The
 * payload has no length of its own; decompressNeural needs it.
 */
export async function compressNeural(model: NeuralByteModel, data: string | Uint8Array): Promise<Uint8Array> {
  return (await compressNeuralMeasured(model, data)).payload;
}

/** compressNeural, also returning the model's ideal bits. */
export async function compressNeuralMeasured(model: NeuralByteModel, data: string | Uint8Array): Promise<NeuralCompressed> {
  const m = modelArg(model);
  const bytes = toBytes('data', data);
  const enc = new JsRangeEncoder();
  const cursor = await m.startDocument();
  let modelBits = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const row = cursor.row;
    modelBits -= Math.log2(row[b]!);
    enc.encode(quantizeProbabilities(row, 0, 'model row'), b);
    if (i + 1 < bytes.length) await cursor.advance(b);
  }
  return { payload: enc.finish(), modelBits };
}

/** The `length` bytes back; a payload this model did not write throws a RangeError (or decodes to other bytes). */
export async function decompressNeural(model: NeuralByteModel, payload: Uint8Array, length: number): Promise<Uint8Array> {
  const m = modelArg(model);
  const n = checkInteger('length', length, 0, 2 ** 32);
  const dec = new JsRangeDecoder(payload);
  const out = new Uint8Array(n);
  const cursor = await m.startDocument();
  for (let i = 0; i < n; i++) {
    const b = dec.decode(quantizeProbabilities(cursor.row, 0, 'model row'));
    out[i] = b;
    if (i + 1 < n) await cursor.advance(b);
  }
  return out;
}
