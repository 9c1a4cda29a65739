/**
 * Equal-Info Windows tokenizer ("Training LLMs over Neurally Compressed Text",
 * Lester et al. 2024): text -> arithmetic-coded bits, cut into windows that
 * each hold exactly `windowBits` bits, with the model's context reset at every
 * window -> tokens of `tokenBits` bits. Decoding is exact for every input:
 * every window ends with an explicit stop (native/coding/window_coder.h), so
 * window ends and the end of the input are never ambiguous. Windows decode
 * independently: `decodeWindow` reads window i alone.
 *
 * Decoding on the GPU (`device: 'cuda' | 'auto'`, built-in ByteModel only):
 * one CUDA thread per window over all windows of all documents, running the
 * CPU decoder's own integer code (native/coding/equal_info_portable.h), so
 * the bytes are exactly the CPU's. Windows that decode to more than a fixed
 * slot (4 * windowBits bytes) are decoded again on the CPU. Without the CUDA
 * build or a device, decoding runs on the CPU, silently, with the same bytes.
 */
import { checkInteger, checkOptions } from '../validate.js';
import { typeError, rangeError } from '../errors.js';
import { cudaAvailability } from '../cuda.js';
import { native, type NativeEqualInfoEncoded, type NativeEqualInfoStepper } from '../native.js';
import { ByteModel } from './model.js';
import { StatsCounter, bytesToText, toBytes, toTokenArray, type Tokenizer, type TokenizerStats } from './tokenizer.js';

/** One row of 256 next-byte probabilities per context (need not sum to 1), or all rows flattened. */
export type ProbabilityRows = Float32Array | Float64Array | readonly (Float32Array | Float64Array | readonly number[])[];

/**
 * A model in JavaScript (for example a neural LM through onnxruntime-node):
 * receives a batch of contexts (the bytes since each context's window
 * started) and returns their next-byte probabilities. The native side
 * quantizes them deterministically, so the same probabilities always give the
 * same tokens.
 */
export type ModelCallback = (contexts: Uint8Array[]) => ProbabilityRows | Promise<ProbabilityRows>;

export interface EqualInfoOptions {
  /** A ByteModel (trained, or loaded from a file) or a callback; default: the embedded model, ByteModel.loadDefault(). */
  model?: ByteModel | ModelCallback;
  /** Bits per window, in [16, 2048]. Default 16 (the paper's best-learning setting). */
  windowBits?: number;
  /** Bits per token, in [8, min(32, windowBits)]: vocabSize = 2^tokenBits. Default 16. */
  tokenBits?: number;
  /** Most bytes one document may decode to (bad or foreign tokens fail instead of exhausting memory). Default 256 MiB. */
  maxBytes?: number;
  /**
   * Where decode, decodeBytes, decodeBatch and their Async forms run (encoding
   * and decodeWindow always run on the CPU). 'cpu' (default); 'cuda' or
   * 'auto': on the CUDA device when one is present, else on the CPU, with the
   * same bytes either way. Only a ByteModel runs on the device: 'cuda' with a
   * callback model is a RangeError ('auto' then means the CPU). A device
   * failure (out of device memory, a CUDA error) throws with 'cuda' and falls
   * back to the CPU with 'auto'.
   */
  device?: EqualInfoDevice;
}

/** Where Equal-Info decoding runs (EqualInfoOptions.device). */
export type EqualInfoDevice = 'cpu' | 'cuda' | 'auto';
const DEVICES: readonly EqualInfoDevice[] = ['cpu', 'cuda', 'auto'];

let cudaPresent: boolean | undefined;
/** Whether a CUDA device can decode here (asked once per process). */
function cudaPresentOnce(): boolean {
  cudaPresent ??= cudaAvailability().available;
  return cudaPresent;
}

export interface EqualInfoStats extends TokenizerStats {
  windows: number;
  bytesPerWindow: number;
}

type TokenIds = Uint16Array | Uint32Array | readonly number[];

const OPTION_NAMES = ['model', 'windowBits', 'tokenBits', 'maxBytes', 'device'] as const;

export class EqualInfoTokenizer implements Tokenizer {
  readonly windowBits: number;
  readonly tokenBits: number;
  readonly vocabSize: number;
  readonly maxBytes: number;
  readonly model: ByteModel | ModelCallback;
  /** The device option as given ('cpu' when omitted). */
  readonly device: EqualInfoDevice;
  private readonly counter = new StatsCounter();
  private windowCount = 0;
  private lastDevice: 'cpu' | 'cuda' | null = null;

  constructor(options?: EqualInfoOptions) {
    const o = checkOptions('options', options, OPTION_NAMES);
    if (o.model !== undefined && !(o.model instanceof ByteModel) && typeof o.model !== 'function') {
      throw typeError('options.model', 'a ByteModel or a callback (contexts) => probabilities', o.model);
    }
    this.model = (o.model as ByteModel | ModelCallback | undefined) ?? ByteModel.loadDefault();
    this.windowBits = o.windowBits === undefined ? 16 : checkInteger('options.windowBits', o.windowBits, 16, 2048);
    this.tokenBits = o.tokenBits === undefined ? 16 : checkInteger('options.tokenBits', o.tokenBits, 8, 32);
    if (this.tokenBits > this.windowBits) {
      throw rangeError('options.tokenBits', `at most windowBits (${this.windowBits})`, this.tokenBits);
    }
    this.maxBytes = o.maxBytes === undefined ? 256 * 2 ** 20 : checkInteger('options.maxBytes', o.maxBytes, 0);
    this.vocabSize = 2 ** this.tokenBits;
    if (o.device !== undefined && !DEVICES.includes(o.device as EqualInfoDevice)) {
      throw rangeError('options.device', "'cpu', 'cuda' or 'auto'", o.device);
    }
    this.device = (o.device as EqualInfoDevice | undefined) ?? 'cpu';
    if (this.device === 'cuda' && !(this.model instanceof ByteModel)) {
      throw rangeError('options.device', "'cpu' or 'auto' with a callback model (only a ByteModel decodes on the device)", this.device);
    }
  }

  /**
   * The device decode calls run on: 'cuda' when the device option allows it,
   * the model is a ByteModel and a CUDA device is present; else 'cpu'.
   */
  get decodeDevice(): 'cpu' | 'cuda' {
    return this.device !== 'cpu' && this.model instanceof ByteModel && cudaPresentOnce() ? 'cuda' : 'cpu';
  }

  /** The device the last decode ran on (after an 'auto' fallback: 'cpu'); null before any decode. */
  get lastDecodeDevice(): 'cpu' | 'cuda' | null {
    return this.lastDevice;
  }

  get stats(): EqualInfoStats {
    const s = this.counter.snapshot();
    return { ...s, windows: this.windowCount, bytesPerWindow: this.windowCount === 0 ? 0 : s.bytes / this.windowCount };
  }

  /** Tokens of one text (UTF-8) or byte string. Built-in models only; a callback model needs encodeAsync. */
  encode(text: string | Uint8Array): Uint16Array | Uint32Array {
    return this.encodeBatch([text])[0]!;
  }

  /** Tokens of many documents, encoded in parallel across documents. */
  encodeBatch(texts: readonly (string | Uint8Array)[]): (Uint16Array | Uint32Array)[] {
    const docs = this.docsArg(texts);
    const r = native().equalInfoEncode({ ...this.params(this.builtIn('encode')), docs });
    return this.count(docs, r);
  }

  async encodeAsync(text: string | Uint8Array): Promise<Uint16Array | Uint32Array> {
    return (await this.encodeBatchAsync([text]))[0]!;
  }

  /** Off the event loop for a built-in model; step by step through the callback otherwise. */
  async encodeBatchAsync(texts: readonly (string | Uint8Array)[]): Promise<(Uint16Array | Uint32Array)[]> {
    const docs = this.docsArg(texts);
    if (this.model instanceof ByteModel) {
      return this.count(docs, await native().equalInfoEncodeAsync({ ...this.params(this.model), docs }));
    }
    const stepper = new (native().EqualInfoStepper)({ mode: 'encode', windowBits: this.windowBits, tokenBits: this.tokenBits, docs });
    return this.count(docs, (await drive(stepper, this.model)) as NativeEqualInfoEncoded);
  }

  /** The text back (invalid UTF-8 becomes U+FFFD; decodeBytes is exact for any bytes). */
  decode(ids: TokenIds): string {
    return bytesToText(this.decodeBytes(ids));
  }

  /** The exact bytes that were encoded. */
  decodeBytes(ids: TokenIds): Uint8Array {
    return this.decodeBatch([ids])[0]!;
  }

  /**
   * Many token lists at once: every window of every list decodes in parallel
   * (on the CPU threads, or one CUDA thread per window: see `device`).
   */
  decodeBatch(lists: readonly TokenIds[]): Uint8Array[] {
    const tokens = this.tokensArg(lists);
    const params = { ...this.params(this.builtIn('decode')), tokens, maxBytes: this.maxBytes };
    if (this.decodeDevice === 'cuda') {
      try {
        const r = native().equalInfoDecodeCuda(params);
        this.lastDevice = 'cuda';
        return r.docs;
      } catch (e) {
        if (!this.fallBack(e)) throw e;
      }
    }
    this.lastDevice = 'cpu';
    return native().equalInfoDecode(params);
  }

  async decodeAsync(ids: TokenIds): Promise<string> {
    return bytesToText((await this.decodeBatchAsync([ids]))[0]!);
  }

  async decodeBytesAsync(ids: TokenIds): Promise<Uint8Array> {
    return (await this.decodeBatchAsync([ids]))[0]!;
  }

  async decodeBatchAsync(lists: readonly TokenIds[]): Promise<Uint8Array[]> {
    const tokens = this.tokensArg(lists);
    if (this.model instanceof ByteModel) {
      const params = { ...this.params(this.model), tokens, maxBytes: this.maxBytes };
      if (this.decodeDevice === 'cuda') {
        try {
          const r = await native().equalInfoDecodeCudaAsync(params);
          this.lastDevice = 'cuda';
          return r.docs;
        } catch (e) {
          if (!this.fallBack(e)) throw e;
        }
      }
      this.lastDevice = 'cpu';
      return native().equalInfoDecodeAsync(params);
    }
    this.lastDevice = 'cpu';
    const stepper = new (native().EqualInfoStepper)({
      mode: 'decode', windowBits: this.windowBits, tokenBits: this.tokenBits, tokens, maxBytes: this.maxBytes,
    });
    return (await drive(stepper, this.model)) as Uint8Array[];
  }

  /** How many windows a token list holds. */
  windowsIn(ids: TokenIds): number {
    const n = Array.isArray(ids) || ArrayBuffer.isView(ids) ? (ids as { length: number }).length : 0;
    return Math.floor((n * this.tokenBits) / this.windowBits);
  }

  /** Random access: the bytes of window `index` alone (windows never depend on each other). */
  decodeWindow(ids: TokenIds, index: number): Uint8Array {
    const tokens = toTokenArray('ids', ids, this.tokenBits);
    const i = checkInteger('index', index, 0);
    return native().equalInfoDecodeWindow({ ...this.params(this.builtIn('decodeWindow')), tokens: [tokens], index: i, maxBytes: this.maxBytes });
  }

  /** With device 'auto', a device failure (not bad tokens: those are RangeErrors) means: decode on the CPU. */
  private fallBack(e: unknown): boolean {
    return this.device === 'auto' && !(e instanceof RangeError) && !(e instanceof TypeError);
  }

  private params(model: ByteModel) {
    return { model: model.handle, windowBits: this.windowBits, tokenBits: this.tokenBits };
  }

  private builtIn(method: string): ByteModel {
    if (this.model instanceof ByteModel) return this.model;
    throw new TypeError(`${method}: a callback model runs asynchronously; use ${method}Async`);
  }

  private docsArg(texts: readonly (string | Uint8Array)[]): Uint8Array[] {
    if (!Array.isArray(texts)) throw typeError('texts', 'an array of strings or Uint8Arrays', texts);
    return texts.map((t, i) => toBytes(`texts[${i}]`, t));
  }

  private tokensArg(lists: readonly TokenIds[]): (Uint16Array | Uint32Array)[] {
    if (!Array.isArray(lists)) throw typeError('lists', 'an array of token id arrays', lists);
    return lists.map((ids, i) => toTokenArray(`lists[${i}]`, ids, this.tokenBits));
  }

  private count(docs: Uint8Array[], r: NativeEqualInfoEncoded): (Uint16Array | Uint32Array)[] {
    docs.forEach((d, i) => {
      this.counter.add(d.length, r.tokens[i]!.length);
      this.windowCount += r.windows[i]!;
    });
    return r.tokens;
  }
}

/** Runs a stepper to the end, asking the callback for every round of predictions. */
async function drive(stepper: NativeEqualInfoStepper, model: ModelCallback): Promise<NativeEqualInfoEncoded | Uint8Array[]> {
  for (;;) {
    const { contexts } = stepper.pending();
    if (contexts.length === 0) return stepper.result();
    const rows = await model(contexts);
    stepper.advance(flattenRows(rows, contexts.length));
  }
}

function flattenRows(rows: unknown, n: number): Float32Array | Float64Array {
  if (rows instanceof Float32Array || rows instanceof Float64Array) {
    if (rows.length !== n * 256) throw rangeError('model(contexts) result', `${n * 256} probabilities (256 per context)`, rows);
    return rows;
  }
  if (!Array.isArray(rows) || rows.length !== n) {
    throw typeError('model(contexts) result', `a Float32Array/Float64Array of ${n} x 256 or an array of ${n} rows of 256`, rows);
  }
  const flat = new Float64Array(n * 256);
  rows.forEach((row: unknown, i) => {
    if (!(row instanceof Float32Array || row instanceof Float64Array || Array.isArray(row)) || (row as ArrayLike<number>).length !== 256) {
      throw typeError(`model(contexts) result[${i}]`, '256 probabilities', row);
    }
    flat.set(row as ArrayLike<number>, i * 256);
  });
  return flat;
}
