// The CUDA Equal-Info decoder's algorithm, run on the host: slot decoding
// (native/coding/equal_info_portable.h, the code the kernel compiles, with
// the device's scalar row scaling) through equalInfoDecodePortable, against
// the CPU decoder (EqualInfoTokenizer.decodeBatch) on awkward inputs: window
// sizes 16..2048, token sizes 8/12/16, empty and one-byte documents, all 256
// byte values, runs, random bytes, text, random token ids (corrupt streams:
// the same bytes or the same error), tiny slots that force the CPU re-decode
// (the overflow count is checked window by window), and many documents.
import { beforeAll, describe, expect, it } from 'vitest';
import { EqualInfoTokenizer } from '../../lib/coding/equal-info.js';
import { ByteModel } from '../../lib/coding/model.js';
import { cudaAvailability } from '../../lib/cuda.js';
import { native } from '../../lib/native.js';
import { awkwardDocs, modelsTrainedOnRuns, outcome, randomBytes, runDocs, sampleText, slotParams, testModel } from './coding-fixtures.js';

const enc = new TextEncoder();
const model = testModel();

type Ids = Uint16Array | Uint32Array;

function portable(tok: EqualInfoTokenizer, lists: Ids[], slotBytes?: number) {
  return native().equalInfoDecodePortable(slotParams(tok, lists, slotBytes));
}

/** Windows of a valid token list whose CPU decode is longer than `limit` bytes. */
function windowsLongerThan(tok: EqualInfoTokenizer, ids: Ids, limit: number): number {
  let n = 0;
  for (let i = 0; i < tok.windowsIn(ids); i++) if (tok.decodeWindow(ids, i).length > limit) n++;
  return n;
}

const SIZES: [number, number][] = [
  [16, 8], [16, 12], [16, 16], [17, 16], [24, 8], [24, 12], [32, 16], [47, 16], [48, 8], [64, 16], [128, 12], [200, 16], [2048, 16],
];

describe('slot decoding (the CUDA algorithm on the host) equals the CPU decoder', () => {
  const docs = [...awkwardDocs(), enc.encode(sampleText(6)), randomBytes(3000, 21)];
  for (const [b, t] of SIZES) {
    it(`windowBits ${b}, tokenBits ${t}: awkward documents, text and random bytes`, () => {
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t });
      const ids = tok.encodeBatch(docs);
      const cpu = tok.decodeBatch(ids);
      const r = portable(tok, ids);
      expect(r.docs.length).toBe(docs.length);
      r.docs.forEach((d, i) => {
        expect(d).toEqual(cpu[i]);
        expect(d).toEqual(docs[i]);
      });
      expect(r.kernelMs).toBe(0);
      // The default slot is 4 b bytes: the overflow count is exactly the
      // windows the CPU decodes to more bytes than that.
      let expected = 0;
      for (const list of ids) expected += windowsLongerThan(tok, list, 4 * b);
      expect(r.overflowWindows).toBe(expected);
    });
  }

  // Models trained on runs (orders 1, 3, 12): their windows overflow the default slot.
  const runs = runDocs();
  const trained: ByteModel[] = [];
  beforeAll(async () => {
    trained.push(...(await modelsTrainedOnRuns()));
  });
  for (const [m, maxOrder] of [[0, 1], [1, 3], [2, 12]] as const) {
    it(`a model of order ${maxOrder} trained on runs: windows overflow the default slot and re-decode on the CPU`, () => {
      const tok = new EqualInfoTokenizer({ model: trained[m]!, windowBits: 16, tokenBits: 16 });
      const ids = tok.encodeBatch(runs);
      const cpu = tok.decodeBatch(ids);
      const r = portable(tok, ids);
      r.docs.forEach((d, i) => {
        expect(d).toEqual(runs[i]);
        expect(d).toEqual(cpu[i]);
      });
      let expected = 0;
      for (const list of ids) expected += windowsLongerThan(tok, list, 64);
      expect(expected).toBeGreaterThan(0);
      expect(r.overflowWindows).toBe(expected);
    });
  }

  it('a stream that decodes past maxBytes: both refuse it with the running-total RangeError (the slot path stops early)', () => {
    // Random windows under a run-trained model decode to many bytes each.
    const tok = new EqualInfoTokenizer({ model: trained[1]!, windowBits: 16, tokenBits: 16, maxBytes: 2000 });
    const ids = new Uint16Array(20000);
    let x = 12345;
    for (let i = 0; i < ids.length; i++) ids[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 16;
    const cpu = outcome(() => tok.decodeBatch([ids, ids.subarray(0, 100)]));
    const slots = outcome(() => portable(tok, [ids, ids.subarray(0, 100)]));
    expect('error' in cpu && cpu.type).toBe('RangeError');
    expect('error' in slots && slots.type).toBe('RangeError');
    expect('error' in slots && slots.error).toMatch(/maxBytes \(2000\)/);
  });

  for (const slot of [1, 2, 3, 7]) {
    it(`tiny slots of ${slot} bytes: most windows re-decode on the CPU, the result stays exact`, () => {
      const tok = new EqualInfoTokenizer({ model, windowBits: 32, tokenBits: 8 });
      const docs = [enc.encode(sampleText(2)), randomBytes(500, slot), new Uint8Array(0), Uint8Array.of(7)];
      const ids = tok.encodeBatch(docs);
      const r = portable(tok, ids, slot);
      r.docs.forEach((d, i) => expect(d).toEqual(docs[i]));
      let expected = 0;
      for (const list of ids) expected += windowsLongerThan(tok, list, slot);
      expect(expected).toBeGreaterThan(0);
      expect(r.overflowWindows).toBe(expected);
    });
  }

  it('many documents (600, lengths 0..700, text and binary)', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 12 });
    const text = enc.encode(sampleText(20));
    const docs = Array.from({ length: 600 }, (_, i) =>
      i % 3 === 0 ? randomBytes((i * 7) % 701, i + 1) : text.subarray(i % 97, (i % 97) + ((i * 13) % 700)));
    const ids = tok.encodeBatch(docs);
    const r = portable(tok, ids);
    r.docs.forEach((d, i) => expect(d).toEqual(docs[i]));
  });

  it('random token ids (corrupt or foreign streams): the same bytes or the same error as the CPU', () => {
    let compared = 0, failures = 0;
    for (let k = 0; k < 120; k++) {
      const [b, t] = SIZES[k % SIZES.length]!;
      const maxBytes = [256 * 2 ** 20, 4096, 40, 3, 0][k % 5]!;
      const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: t, maxBytes });
      const windows = 1 + (k % 9);
      const count = Math.ceil((windows * b) / t);
      const raw = randomBytes(count * 4, 1000 + k);
      const ids = t <= 16 ? new Uint16Array(count) : new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        ids[i] = (raw[4 * i]! | (raw[4 * i + 1]! << 8) | (raw[4 * i + 2]! << 16) | (raw[4 * i + 3]! << 24)) >>> 0 & (2 ** t - 1);
      }
      // Zero padding after the last window, as valid streams have.
      const padBits = count * t - windows * b;
      if (padBits > 0) ids[count - 1] = (ids[count - 1]! >> padBits) << padBits;
      const cpu = outcome(() => tok.decodeBatch([ids]));
      const slots = outcome(() => portable(tok, [ids], k % 3 === 0 ? 2 : undefined).docs);
      if ('ok' in cpu) {
        expect(slots).toEqual(cpu);
      } else {
        failures++;
        expect('error' in slots).toBe(true);
        if ('error' in slots) {
          expect(slots.type).toBe(cpu.type);
          // One window over its cap, or a document over maxBytes: the CPU may
          // report either when both hold (its early stop is schedule-driven).
          const kind = (m: string) => (/a window decodes to more than/.test(m) ? 'window' : /maxBytes/.test(m) ? 'doc' : m);
          expect(['window', 'doc']).toContain(kind(cpu.error));
          expect(['window', 'doc']).toContain(kind(slots.error));
        }
      }
      compared++;
    }
    expect(compared).toBe(120);
    expect(failures).toBeGreaterThan(0);
    expect(failures).toBeLessThan(compared);
  });

  it('bit flips in valid streams decode like the CPU', () => {
    const tok = new EqualInfoTokenizer({ model, windowBits: 64, tokenBits: 16, maxBytes: 1 << 16 });
    const good = tok.encode(sampleText(3));
    for (let k = 0; k < 40; k++) {
      const ids = Uint16Array.from(good);
      ids[(k * 37) % ids.length]! ^= 1 << (k % 16);
      const cpu = outcome(() => tok.decodeBatch([ids]));
      const slots = outcome(() => portable(tok, [ids]).docs);
      expect(slots).toEqual(cpu);
    }
  });
});

describe('slot decoding arguments', () => {
  const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16 });
  const ids = tok.encode('hello');
  it('checks slotBytes, the model and the tokens like equalInfoDecode', () => {
    const base = { model: model.handle, windowBits: 16, tokenBits: 16, tokens: [ids], maxBytes: 100 };
    expect(() => native().equalInfoDecodePortable({ ...base, slotBytes: -1 })).toThrow(/slotBytes: expected an integer in \[0, 1048576\], received -1/);
    expect(() => native().equalInfoDecodePortable({ ...base, slotBytes: 2 ** 21 })).toThrow(/slotBytes/);
    expect(() => native().equalInfoDecodePortable({ ...base, model: {} as never })).toThrow(/model: expected a ByteModel/);
    expect(() => native().equalInfoDecodePortable({ ...base, windowBits: 24, tokens: [Uint16Array.of(1)] })).toThrow(/whole 24-bit windows/);
    expect(() => native().equalInfoDecodePortable({ ...base, windowBits: 4 })).toThrow(/windowBits/);
    expect(new TextDecoder().decode(native().equalInfoDecodePortable({ ...base, slotBytes: 0 }).docs[0])).toBe('hello');
  });

  it.skipIf(cudaAvailability().available)('equalInfoDecodeCuda refuses with ERR_NO_CUDA without a device', async () => {
    const params = { model: model.handle, windowBits: 16, tokenBits: 16, tokens: [ids], maxBytes: 100 };
    expect(() => native().equalInfoDecodeCuda(params)).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
    expect(() => native().equalInfoDecodeCudaAsync(params)).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
  });
});

describe('EqualInfoTokenizer device option', () => {
  const docs = [enc.encode(sampleText(2)), new Uint8Array(0), randomBytes(333, 5)];
  it('checks the option', () => {
    expect(() => new EqualInfoTokenizer({ model, device: 'gpu' as never })).toThrow(/options.device: expected 'cpu', 'cuda' or 'auto', received "gpu"/);
    expect(() => new EqualInfoTokenizer({ model, devce: 'cuda' } as never)).toThrow(/did you mean "device"/);
    const callback = () => [new Float64Array(256).fill(1)];
    expect(() => new EqualInfoTokenizer({ model: callback, device: 'cuda' })).toThrow(RangeError);
    expect(() => new EqualInfoTokenizer({ model: callback, device: 'cuda' })).toThrow(/options.device: expected 'cpu' or 'auto' with a callback model/);
    const auto = new EqualInfoTokenizer({ model: callback, device: 'auto' });
    expect(auto.decodeDevice).toBe('cpu');
    expect(new EqualInfoTokenizer({ model }).device).toBe('cpu');
    expect(new EqualInfoTokenizer({ model }).decodeDevice).toBe('cpu');
  });

  it('a callback model with device auto decodes on the CPU', async () => {
    const callback = (ctx: Uint8Array[]) => ctx.map(() => new Float64Array(256).fill(1));
    const tok = new EqualInfoTokenizer({ model: callback, device: 'auto', windowBits: 24, tokenBits: 8 });
    const ids = await tok.encodeAsync('xyz');
    expect(await tok.decodeAsync(ids)).toBe('xyz');
    expect(tok.lastDecodeDevice).toBe('cpu');
  });

  for (const device of ['cuda', 'auto'] as const) {
    it(`device ${device}: the same bytes as the CPU, on the device when one is present`, async () => {
      const cpu = new EqualInfoTokenizer({ model, windowBits: 32, tokenBits: 16 });
      const tok = new EqualInfoTokenizer({ model, windowBits: 32, tokenBits: 16, device });
      const ids = cpu.encodeBatch(docs);
      expect(tok.lastDecodeDevice).toBe(null);
      const expected = cudaAvailability().available ? 'cuda' : 'cpu';
      expect(tok.decodeDevice).toBe(expected);
      tok.decodeBatch(ids).forEach((d, i) => expect(d).toEqual(docs[i]));
      expect(tok.lastDecodeDevice).toBe(expected);
      (await tok.decodeBatchAsync(ids)).forEach((d, i) => expect(d).toEqual(docs[i]));
      expect(tok.decodeBytes(ids[0]!)).toEqual(docs[0]);
      expect(await tok.decodeAsync(ids[0]!)).toBe(sampleText(2));
      expect(tok.lastDecodeDevice).toBe(expected);
      // Bad tokens: the CPU decoder's error on either device.
      expect(() => tok.decode(Uint16Array.of(1))).toThrow(/whole 32-bit windows/);
    });
  }
});
