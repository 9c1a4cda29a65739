// Equal-Info decoding on the CUDA device (native/cuda/cuda_equal_info.cu)
// against the CPU decoder, byte for byte: window sizes 16..2048, token sizes
// 8/12/16, awkward documents (empty, one byte, all 256 values, runs, invalid
// UTF-8), text, random bytes, random token ids (corrupt streams: the same
// bytes or the same kind of error), a batch of more than 20,000 windows,
// tiny slots that force the CPU re-decode (the overflow count must equal the
// host run of the same algorithm, equalInfoDecodePortable), models of orders
// 1, 3 and 12 (device copies of several models at once), the async entry
// point and the tokenizer's device option.
//
// Without the CUDA build or a device every comparison SKIPS (the describe
// title and a console line give the reason) and one test checks that the
// binding refuses with code ERR_NO_CUDA instead.
import { beforeAll, describe, expect, it } from 'vitest';
import { EqualInfoTokenizer } from '../../lib/coding/equal-info.js';
import { ByteModel } from '../../lib/coding/model.js';
import { cudaAvailability } from '../../lib/cuda.js';
import { native } from '../../lib/native.js';
import { awkwardDocs, modelsTrainedOnRuns, outcome, randomBytes, runDocs, sampleText, slotParams, testModel } from '../unit/coding-fixtures.js';

const cuda = cudaAvailability();
if (!cuda.available) console.warn(`test/gpu: CUDA Equal-Info tests skipped: ${cuda.reason}`);
const title = cuda.available ? `CUDA Equal-Info decoding on ${cuda.devices}` : `CUDA Equal-Info decoding (skipped: ${cuda.reason})`;

const enc = new TextEncoder();
const model = testModel();
type Ids = Uint16Array | Uint32Array;

/** Device decode == CPU decode == the documents; overflow count == the host run's. */
function checkSame(tok: EqualInfoTokenizer, ids: Ids[], docs: Uint8Array[] | null, slotBytes?: number): number {
  const gpu = native().equalInfoDecodeCuda(slotParams(tok, ids, slotBytes));
  const host = native().equalInfoDecodePortable(slotParams(tok, ids, slotBytes));
  const cpu = tok.decodeBatch(ids);
  expect(gpu.docs.length).toBe(cpu.length);
  gpu.docs.forEach((d, i) => {
    expect(d).toEqual(cpu[i]);
    if (docs) expect(d).toEqual(docs[i]);
  });
  expect(gpu.overflowWindows).toBe(host.overflowWindows);
  expect(gpu.kernelMs).toBeGreaterThanOrEqual(0);
  return gpu.overflowWindows;
}

const SIZES: [number, number][] = [
  [16, 8], [16, 12], [16, 16], [17, 16], [24, 8], [24, 12], [32, 16], [47, 16], [48, 8], [64, 16], [128, 12], [200, 16], [2048, 16],
];

describe.skipIf(!cuda.available)(title, () => {
  const docs = [...awkwardDocs(), enc.encode(sampleText(6)), randomBytes(3000, 21)];
  for (const [b, t] of SIZES) {
    it(`windowBits ${b}, tokenBits ${t}: awkward documents, text and random bytes`, () => {
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t });
      checkSame(tok, tok.encodeBatch(docs), docs);
    });
  }

  it('a batch of more than 20,000 windows over 300 documents (16-bit windows and tokens)', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16 });
    const text = enc.encode(sampleText(1200));
    const many = Array.from({ length: 300 }, (_, i) => (i % 5 === 4 ? randomBytes(i * 3, i) : text.subarray(i * 97, i * 97 + 200 + ((i * 31) % 900))));
    many.push(text);
    const ids = tok.encodeBatch(many);
    const windows = ids.reduce((n, l) => n + tok.windowsIn(l), 0);
    expect(windows).toBeGreaterThan(20000);
    checkSame(tok, ids, many);
  });

  for (const slot of [1, 2, 5]) {
    it(`forced overflow: ${slot}-byte slots re-decode most windows on the CPU, still exact`, () => {
      const tok = new EqualInfoTokenizer({ model, windowBits: 64, tokenBits: 16 });
      const ids = tok.encodeBatch(docs);
      expect(checkSame(tok, ids, docs, slot)).toBeGreaterThan(0);
    });
  }

  it('random token ids: the same bytes or the same kind of error as the CPU', () => {
    let failures = 0;
    for (let k = 0; k < 120; k++) {
      const [b, t] = SIZES[k % SIZES.length]!;
      const maxBytes = [256 * 2 ** 20, 4096, 40, 3][k % 4]!;
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t, maxBytes });
      const windows = 1 + (k % 9);
      const count = Math.ceil((windows * b) / t);
      const raw = randomBytes(count * 4, 1000 + k);
      const ids = new Uint16Array(count);
      for (let i = 0; i < count; i++) ids[i] = ((raw[4 * i]! | (raw[4 * i + 1]! << 8)) >>> 0) & (2 ** t - 1);
      const padBits = count * t - windows * b;
      if (padBits > 0) ids[count - 1] = (ids[count - 1]! >> padBits) << padBits;
      const cpu = outcome(() => tok.decodeBatch([ids]));
      const gpu = outcome(() => native().equalInfoDecodeCuda(slotParams(tok, [ids], k % 3 === 0 ? 2 : undefined)).docs);
      if ('ok' in cpu) {
        expect(gpu).toEqual(cpu);
      } else {
        failures++;
        expect('error' in gpu && gpu.type).toBe(cpu.type);
        if ('error' in gpu) expect(gpu.error).toMatch(/a window decodes to more than|maxBytes/);
      }
    }
    expect(failures).toBeGreaterThan(0);
  });

  describe('other models (orders 1, 3, 12), device copies side by side', () => {
    const runs = runDocs();
    const trained: ByteModel[] = [];
    beforeAll(async () => {
      trained.push(...(await modelsTrainedOnRuns()));
    });
    it('decodes with each model in turn, twice (cached copies), overflowing the default slot', () => {
      for (let round = 0; round < 2; round++) {
        for (const m of [...trained, model]) {
          const tok = new EqualInfoTokenizer({ model: m, windowBits: 16, tokenBits: 16 });
          const over = checkSame(tok, tok.encodeBatch(runs), runs);
          if (m !== model) expect(over).toBeGreaterThan(0);
        }
      }
    });
  });

  it('the async entry point and the tokenizer option give the same bytes', async () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 32, tokenBits: 16, device: 'cuda' });
    const ids = tok.encodeBatch(docs);
    const r = await native().equalInfoDecodeCudaAsync(slotParams(tok, ids));
    r.docs.forEach((d, i) => expect(d).toEqual(docs[i]));
    expect(tok.decodeDevice).toBe('cuda');
    tok.decodeBatch(ids).forEach((d, i) => expect(d).toEqual(docs[i]));
    expect(tok.lastDecodeDevice).toBe('cuda');
    (await tok.decodeBatchAsync(ids)).forEach((d, i) => expect(d).toEqual(docs[i]));
    expect(tok.lastDecodeDevice).toBe('cuda');
  });
});

describe.skipIf(cuda.available)('CUDA Equal-Info decoding without a device', () => {
  it('the binding refuses with ERR_NO_CUDA; the tokenizer decodes on the CPU', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16, device: 'cuda' });
    const ids = tok.encode('hello');
    expect(() => native().equalInfoDecodeCuda(slotParams(tok, [ids]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
    expect(tok.decode(ids)).toBe('hello');
    expect(tok.lastDecodeDevice).toBe('cpu');
  });
});
