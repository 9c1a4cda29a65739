import { describe, expect, it } from 'vitest';
import { EqualInfoTokenizer, type ModelCallback } from '../../lib/coding/equal-info.js';
import { ByteModel } from '../../lib/coding/model.js';
import { ByteTokenizer } from '../../lib/coding/byte-tokenizer.js';
import { setThreads } from '../../lib/backend.js';
import { native } from '../../lib/native.js';
import { decodeWindow, encodeWindows, tokensToWindows, windowsToTokens, type Predict } from '../reference/equal-info.js';
import { awkwardDocs, randomBytes, sampleText, testModel } from './coding-fixtures.js';
import { isasOnThisCpu, withIsa } from './isa.js';

const enc = new TextEncoder();

/** A deterministic JS model: skewed toward bytes seen in the context, with a floor everywhere. */
const jsPredict: Predict = (ctx) => {
  const p = new Float64Array(256).fill(0.5);
  p[32] = 40;
  p[101] = 30;
  for (let i = 0; i < ctx.length; i++) p[ctx[i]!]! += 3 + i;
  if (ctx.length > 0) p[(ctx[ctx.length - 1]! * 7 + 1) & 255]! += 50;
  return p;
};
const jsModel: ModelCallback = (contexts) => contexts.map((c) => Float64Array.from(jsPredict(c)));

const SIZES: [number, number][] = [
  [16, 8], [16, 16], [17, 16], [24, 16], [24, 8], [32, 16], [47, 16], [48, 8], [64, 16], [128, 16], [200, 12], [2048, 16],
];

describe('Equal-Info windows against the BigInt reference', () => {
  const docs = [...awkwardDocs().filter((d) => d.length <= 300), enc.encode(sampleText(1)), randomBytes(300, 9)];
  for (const [b, t] of SIZES) {
    it(`windowBits ${b}, tokenBits ${t}: native tokens equal the reference, and decode back`, async () => {
      const tok = new EqualInfoTokenizer({ model: jsModel, windowBits: b, tokenBits: t });
      const got = await tok.encodeBatchAsync(docs);
      docs.forEach((d, i) => {
        const want = windowsToTokens(encodeWindows(d, b, jsPredict), b, t);
        expect(Array.from(got[i]!), `doc ${i}`).toEqual(want);
      });
      const back = await tok.decodeBatchAsync(got);
      back.forEach((d, i) => expect(Buffer.from(d).equals(Buffer.from(docs[i]!)), `doc ${i}`).toBe(true));
      // The reference decoder reads the native tokens window by window.
      const ref = tokensToWindows(got[docs.length - 1]!, b, t).map((w) => decodeWindow(w, b, jsPredict));
      expect(Buffer.concat(ref).equals(Buffer.from(docs[docs.length - 1]!))).toBe(true);
    });
  }

  it('every window value decodes: random values through the reference and the native decoder agree', async () => {
    for (const [b, t] of [[16, 16], [24, 8], [64, 16]] as const) {
      const tok = new EqualInfoTokenizer({ model: jsModel, windowBits: b, tokenBits: t });
      for (let seed = 1; seed <= 20; seed++) {
        const bytes = randomBytes((b / 8) * 3, seed * 31 + b);
        const ids = t === 8 ? Uint16Array.from(bytes) : new Uint16Array(bytes.buffer.slice(0, bytes.length - (bytes.length % 2)));
        const n = Math.floor((ids.length * t) / b);
        const usable = ids.subarray(0, Math.ceil((n * b) / t));
        // Zero the padding bits so the list is well formed.
        const windows = tokensToWindows(usable, b, t);
        const clean = Uint16Array.from(windowsToTokens(windows, b, t));
        const native = await tok.decodeBytesAsync(clean);
        const ref = Buffer.concat(windows.map((w) => decodeWindow(w, b, jsPredict)));
        expect(Buffer.from(native).equals(ref)).toBe(true);
      }
    }
  });
});

describe('Equal-Info windows with a built-in model', () => {
  const model = testModel();
  const docs = awkwardDocs();

  for (const [b, t] of [[16, 16], [16, 8], [24, 16], [32, 8], [64, 16], [128, 16], [2048, 16], [17, 12]] as const) {
    it(`round-trips awkward documents exactly (windowBits ${b}, tokenBits ${t})`, () => {
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t });
      const ids = tok.encodeBatch(docs);
      ids.forEach((x) => expect(x).toBeInstanceOf(t <= 16 ? Uint16Array : Uint32Array));
      ids.forEach((x) => x.forEach((v) => expect(v).toBeLessThan(2 ** t)));
      const back = tok.decodeBatch(ids);
      back.forEach((d, i) => expect(Buffer.from(d).equals(Buffer.from(docs[i]!)), `doc ${i}`).toBe(true));
      expect(ids[0]!.length).toBe(0);
    });
  }

  it('round-trips random and adversarial inputs (property test, 400 cases)', () => {
    const sizes = [[16, 16], [24, 16], [64, 8]] as const;
    for (let k = 0; k < 400; k++) {
      const [b, t] = sizes[k % sizes.length]!;
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t });
      const len = (k * 37) % 200;
      const r = randomBytes(len, k + 1);
      const mode = k % 4;
      const doc =
        mode === 0 ? r
        : mode === 1 ? r.map((x) => (x < 200 ? 0 : x))
        : mode === 2 ? enc.encode(sampleText(1)).subarray(k % 50, (k % 50) + len)
        : r.map((x) => 'etaoin '.charCodeAt(x % 7));
      const ids = tok.encode(doc);
      expect(Buffer.from(tok.decodeBytes(ids)).equals(Buffer.from(doc)), `case ${k}`).toBe(true);
    }
  });

  it('decodes texts whose last window ends in zero bits (the paper\'s ambiguous case)', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 8 });
    let found = 0;
    for (let k = 0; k < 3000 && found < 20; k++) {
      const doc = enc.encode(sampleText(1)).subarray(k % 97, (k % 97) + 1 + (k % 13));
      const ids = tok.encode(doc);
      if (ids[ids.length - 1] !== 0) continue;
      found++;
      expect(Buffer.from(tok.decodeBytes(ids)).equals(Buffer.from(doc))).toBe(true);
    }
    expect(found).toBeGreaterThan(0);
  });

  it('decodes any window alone (random access) and the pieces make the document', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 16 });
    const doc = enc.encode(sampleText(5));
    const ids = tok.encode(doc);
    const n = tok.windowsIn(ids);
    expect(n).toBeGreaterThan(10);
    const pieces = Array.from({ length: n }, (_, i) => tok.decodeWindow(ids, i));
    expect(Buffer.concat(pieces).equals(Buffer.from(doc))).toBe(true);
    expect(() => tok.decodeWindow(ids, n)).toThrow(/index: expected a window index in \[0, /);
  });

  it('gives the same tokens for any thread count and for batch or single calls', async () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16 });
    const texts = Array.from({ length: 9 }, (_, i) => sampleText(1 + i).slice(i * 3));
    setThreads(1);
    const one = tok.encodeBatch(texts);
    setThreads(2);
    const two = await tok.encodeBatchAsync(texts);
    setThreads(4);
    const four = texts.map((s) => tok.encode(s));
    setThreads(2);
    expect(two).toEqual(one);
    expect(four).toEqual(one);
    expect((await tok.decodeBatchAsync(one)).map((d) => new TextDecoder().decode(d))).toEqual(texts);
    expect(tok.decode(one[3]!)).toBe(texts[3]);
  });

  it('gives the same tokens on every SIMD path (setIsa)', () => {
    // setIsa returns nothing and throws above the detected level: the levels
    // come from backendInfo().detectedIsa, and each one must really run.
    const tok = new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 16 });
    const text = sampleText(6);
    const want = tok.encode(text);
    const isas = isasOnThisCpu();
    expect(isas[0]).toBe('scalar');
    for (const isa of isas) {
      withIsa(isa, () => expect(tok.encode(text), isa).toEqual(want));
    }
    expect.assertions(1 + isas.length);
  });

  it('keeps stats: bytes, tokens, windows and their ratios', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 8 });
    const doc = enc.encode(sampleText(2));
    const ids = tok.encode(doc);
    const s = tok.stats;
    expect(s.bytes).toBe(doc.length);
    expect(s.tokens).toBe(ids.length);
    expect(s.windows).toBe(ids.length / 2);
    expect(s.bytesPerToken).toBeCloseTo(doc.length / ids.length, 12);
    expect(s.bytesPerWindow).toBeCloseTo((2 * doc.length) / ids.length, 12);
    expect(tok.vocabSize).toBe(256);
  });

  it('bounds what bad or foreign tokens decode to, and never crashes (bounded fuzz)', () => {
    const deadline = Date.now() + 2000;
    let runs = 0, errors = 0;
    const good = new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 8, maxBytes: 4096 }).encode(sampleText(2));
    for (let k = 0; Date.now() < deadline && k < 3000; k++) {
      const b = [16, 24, 32, 64, 128][k % 5]!;
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: 8, maxBytes: 4096 });
      const ids = k % 2 === 0 ? Uint16Array.from(randomBytes(((k % 40) * b) / 8, k + 7)) : Uint16Array.from(good);
      if (k % 2 === 1) ids[k % ids.length] = ids[k % ids.length]! ^ (1 << (k % 8));
      try {
        const out = tok.decodeBytes(ids);
        expect(out.length).toBeLessThanOrEqual(4096);
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
        errors++;
      }
      runs++;
    }
    expect(runs).toBeGreaterThan(100);
    expect(errors).toBeLessThan(runs);
  });
});

describe('EqualInfoTokenizer arguments and callback models', () => {
  const model = testModel();
  it('names the bad argument', () => {
    expect(() => new EqualInfoTokenizer({ model, windowBits: 15 })).toThrow(/options.windowBits: expected an integer in \[16, 2048\], received 15/);
    expect(() => new EqualInfoTokenizer({ model, tokenBits: 7 })).toThrow(/options.tokenBits/);
    expect(() => new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 24 })).toThrow(/options.tokenBits: expected at most windowBits \(16\)/);
    expect(() => new EqualInfoTokenizer({ model: 'x' as never })).toThrow(/options.model: expected a ByteModel or a callback/);
    expect(() => new EqualInfoTokenizer({ model, windowBit: 16 } as never)).toThrow(/did you mean "windowBits"/);
    const tok = new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 8 });
    expect(() => tok.encode(42 as never)).toThrow(/texts\[0\]: expected a string or a Uint8Array, received 42/);
    expect(() => tok.decode([1, 2, 300])).toThrow(/lists\[0\]\[2\]: expected an integer token id in \[0, 2\^8\), received 300/);
    expect(() => tok.decode([1, 2])).toThrow(/tokens\[0\]: expected a count that holds whole 24-bit windows/);
    expect(() => tok.decode(Uint16Array.of(1, 2, 3, 4))).toThrow(/whole 24-bit windows/);
  });

  it('runs a callback model step by step, sync or async, and rejects bad predictions clearly', async () => {
    const asyncModel: ModelCallback = async (contexts) => jsModel(contexts);
    const tok = new EqualInfoTokenizer({ model: asyncModel, windowBits: 32, tokenBits: 16 });
    const ids = await tok.encodeAsync('callback models work');
    expect(await tok.decodeAsync(ids)).toBe('callback models work');
    expect(() => tok.encode('x')).toThrow(/encode: a callback model runs asynchronously; use encodeAsync/);
    const bad = new EqualInfoTokenizer({ model: (c) => c.map(() => new Float64Array(10)), windowBits: 16 });
    await expect(bad.encodeAsync('x')).rejects.toThrow(/model\(contexts\) result\[0\]: expected 256 probabilities/);
    const nan = new EqualInfoTokenizer({ model: (c) => new Float32Array(c.length * 256).fill(NaN), windowBits: 16 });
    await expect(nan.encodeAsync('x')).rejects.toThrow(/probabilities row 0, probabilities\[0\]: expected a finite number >= 0/);
    const zero = new EqualInfoTokenizer({ model: (c) => new Float32Array(c.length * 256), windowBits: 16 });
    await expect(zero.encodeAsync('x')).rejects.toThrow(/positive, finite sum/);
  });
});

describe('the native coding entry points with hostile parameters', () => {
  const model = testModel();
  const addon = native();
  it('throw JS errors naming the field, never crash', () => {
    expect(() => addon.equalInfoEncode({ model: {} as never, windowBits: 16, tokenBits: 16, docs: [] })).toThrow(/model: expected a ByteModel/);
    expect(() => addon.equalInfoEncode({ model: model.handle, windowBits: 9999, tokenBits: 16, docs: [] })).toThrow(/windowBits: expected an integer in \[16, 2048\]/);
    expect(() => addon.equalInfoEncode({ model: model.handle, windowBits: 16, tokenBits: 64, docs: [] })).toThrow(/tokenBits/);
    expect(() => addon.equalInfoEncode({ model: model.handle, windowBits: 16, tokenBits: 16, docs: [new Float32Array(3)] as never })).toThrow(/docs\[0\]: expected a Uint8Array/);
    expect(() => addon.equalInfoDecode({ model: model.handle, windowBits: 16, tokenBits: 16, tokens: [Uint32Array.of(70000)], maxBytes: 10 })).toThrow(/tokens\[0\]\[0\]|below 2\^16/);
    expect(() => addon.equalInfoDecode({ model: model.handle, windowBits: 16, tokenBits: 16, tokens: [Uint16Array.of(1)], maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => addon.equalInfoDecodeWindow({ model: model.handle, windowBits: 16, tokenBits: 16, tokens: [Uint16Array.of(1)], index: 5, maxBytes: 10 })).toThrow(/index/);
    expect(() => addon.staticDecode({ model: model.handle, payloads: [new Uint8Array(4)], lengths: [1, 2], maxBytes: 10 })).toThrow(/lengths: expected an array with one length per payload/);
    expect(() => addon.staticDecode({ model: model.handle, payloads: [new Uint8Array(4)], lengths: [11], maxBytes: 10 })).toThrow(/lengths\[0\]/);
  });

  it('keep the stepper consistent: wrong sizes, early result, and a failed step', () => {
    const s = new addon.EqualInfoStepper({ mode: 'encode', windowBits: 16, tokenBits: 16, docs: [Uint8Array.of(1, 2, 3)] });
    expect(() => s.result()).toThrow(/result\(\) before every stream is done/);
    const p = s.pending();
    expect(p.contexts.length).toBe(1);
    expect(() => s.advance(new Float64Array(255))).toThrow(/expected 256 values/);
    expect(() => s.advance(new Uint8Array(256) as never)).toThrow(/Float32Array or Float64Array/);
    // The failed calls changed nothing: the same step still works.
    s.advance(new Float64Array(256).fill(1));
    expect(() => new addon.EqualInfoStepper({ mode: 'sideways' as never, windowBits: 16, tokenBits: 16 })).toThrow(/mode: expected 'encode' or 'decode'/);
    const d = new addon.EqualInfoStepper({ mode: 'decode', windowBits: 16, tokenBits: 16, tokens: [Uint16Array.of(65535, 65535)], maxBytes: 1 });
    d.pending();
    d.advance(new Float64Array(512).fill(1));
    d.pending();
    expect(() => d.advance(new Float64Array(d.pending().contexts.length * 256).fill(1))).toThrow(/more than 1 bytes/);
    expect(() => d.advance(new Float64Array(0))).toThrow(/a previous step failed/);
  });
});

describe('ByteTokenizer', () => {
  it('is one token per byte with the same interface', () => {
    const t = new ByteTokenizer();
    const ids = t.encode('héllo');
    expect(Array.from(ids)).toEqual(Array.from(enc.encode('héllo')));
    expect(t.decode(ids)).toBe('héllo');
    expect(t.vocabSize).toBe(256);
    expect(t.stats.bytesPerToken).toBe(1);
    expect(() => t.decode([256])).toThrow(/ids\[0\]: expected an integer token id in \[0, 2\^8\), received 256/);
  });
});

describe('Equal-Info defaults', () => {
  it('with no options (or model: undefined) it uses the embedded model: the same tokens as ByteModel.loadDefault()', () => {
    const text = sampleText(2).slice(0, 400);
    const explicit = new EqualInfoTokenizer({ model: ByteModel.loadDefault(), windowBits: 16, tokenBits: 16 }).encode(text);
    for (const tok of [new EqualInfoTokenizer(), new EqualInfoTokenizer({ windowBits: 16, tokenBits: 16 }), new EqualInfoTokenizer({ model: undefined })]) {
      expect(tok.model).toBe(ByteModel.loadDefault());
      const ids = tok.encode(text);
      expect(Array.from(ids)).toEqual(Array.from(explicit));
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('a model that is neither a ByteModel nor a callback is still a TypeError naming options.model', () => {
    expect(() => new EqualInfoTokenizer({ model: 7 as never })).toThrow(/options\.model: expected a ByteModel or a callback/);
    expect(() => new EqualInfoTokenizer({ model: null as never })).toThrow(TypeError);
  });
});
