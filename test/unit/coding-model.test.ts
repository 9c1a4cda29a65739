/**
 * The built-in byte model (lib/coding/model.ts, native/coding/kn_model*):
 * masses against the float64 Kneser-Ney reference on an awkward text for
 * contexts of every length (seen, unseen, longer than maxOrder), training
 * determinism, serialization round trips, pruning to maxBytes, hostile files
 * and bad arguments, and the embedded default model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ByteModel, TokenpressError } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { buildKnReference, referenceProbabilities } from '../reference/kn-model.js';
import { mulberry32, randomInt } from '../reference/random.js';

/*
 * Tolerance: the model's probabilities are fixed point (entries keep 24
 * bits, weights 30, gammas 31; every byte gets +1 of 2^30), so a normalized
 * probability is off by at most ~8 orders x 2^-24 plus the floor, < 1e-6.
 * The reference uses the same 1/65536-rounded discounts. Any slip in the
 * formula (a wrong discount class, raw counts where continuation counts
 * belong, a missed order) moves probabilities by >= 1e-3 on this text.
 */
const PROB_TOL = 2e-6;

/** An awkward text: repeats, long runs, bytes 0 and 255, a random stretch, UTF-8. */
function awkwardText(): Uint8Array {
  const rng = mulberry32(7);
  const parts: number[] = [];
  const push = (s: string) => parts.push(...new TextEncoder().encode(s));
  for (let i = 0; i < 12; i++) push(i % 3 === 0 ? 'the cat sat on the mat. ' : 'the hat sat on a cat! ');
  push('abracadabra abracadabra abrac');
  for (let i = 0; i < 40; i++) parts.push(97);
  parts.push(0, 0, 255, 0, 255, 255, 1, 0);
  for (let i = 0; i < 300; i++) parts.push(randomInt(rng, 0, 255));
  push('naïve café — ünïcödé ');
  for (let i = 0; i < 25; i++) push(['to be ', 'or not ', 'that is ', 'the question '][randomInt(rng, 0, 3)]!);
  parts.push(10, 13, 10, 9);
  return Uint8Array.from(parts);
}

/** Seeded pseudo-English: words from a small vocabulary with Zipf-like frequencies. */
function pseudoEnglish(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  const vocab = 'the of and to in is was he for it with as his on be at by had are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people'.split(' ');
  const out = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const w = vocab[Math.floor(vocab.length * rng() ** 2.5)]!;
    const s = (rng() < 0.08 ? w[0]!.toUpperCase() + w.slice(1) : w) + (rng() < 0.1 ? '. ' : ' ');
    for (let j = 0; j < s.length && i < n; j++) out[i++] = s.charCodeAt(j);
  }
  return out;
}

function contextsOfEveryLength(text: Uint8Array, maxOrder: number, seed: number): Uint8Array[] {
  const rng = mulberry32(seed);
  const out: Uint8Array[] = [];
  for (let len = 0; len <= maxOrder + 2; len++) {
    for (let j = 0; j < 6; j++) {
      const at = randomInt(rng, len, text.length); // seen in the text
      out.push(text.slice(at - len, at));
    }
    const unseen = new Uint8Array(len);
    for (let i = 0; i < len; i++) unseen[i] = randomInt(rng, 0, 255);
    out.push(unseen);
    if (len > 0) {
      const mixed = text.slice(40, 40 + len); // seen except its oldest byte
      mixed[0] = 254;
      out.push(mixed);
    }
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'tp-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectBadFile(fn: () => unknown, pattern?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a throw').toBeInstanceOf(TokenpressError);
  expect((err as TokenpressError).code).toBe('ERR_BAD_FILE');
  expect((err as Error).message).toMatch(/not a valid tokenpress byte model/);
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

/** FNV-1a 64 of every byte but [24, 32) (the file's hash field). */
function fileHash(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < bytes.length; i++) {
    if (i >= 24 && i < 32) continue;
    h = ((h ^ BigInt(bytes[i]!)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}
function rehash(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(24, fileHash(bytes), true);
  return bytes;
}

describe('ByteModel against the float64 Kneser-Ney reference', () => {
  const text = awkwardText();
  for (const maxOrder of [1, 3, 6]) {
    it(`order ${maxOrder}: masses match for contexts of every length, seen and unseen`, async () => {
      const model = await ByteModel.train(text, { maxOrder, maxBytes: 1_000_000 });
      const ref = buildKnReference(text, maxOrder);
      expect(model.info.contexts).toEqual(ref.raw.map((m) => m.size));
      expect(model.info.trainedBytes).toBe(text.length);
      let worst = 0;
      for (const ctx of contextsOfEveryLength(text, maxOrder, 11 + maxOrder)) {
        const m = model.masses(ctx);
        let sum = 0;
        for (const v of m) {
          expect(v).toBeGreaterThanOrEqual(1);
          sum += v;
        }
        expect(sum).toBeLessThan(2 ** 31);
        const p = model.probabilities(ctx);
        const q = referenceProbabilities(ref, ctx);
        for (let b = 0; b < 256; b++) worst = Math.max(worst, Math.abs(p[b]! - q[b]!));
      }
      expect(worst).toBeLessThan(PROB_TOL);
    });
  }

  it('order 3 on random bytes: more order-2 contexts than dense rows (4096), the rest looked up', async () => {
    const rng = mulberry32(31);
    const text = new Uint8Array(40_000);
    for (let i = 0; i < text.length; i++) text[i] = rng() < 0.5 ? randomInt(rng, 0, 255) : 97 + randomInt(rng, 0, 5);
    const model = await ByteModel.train(text, { maxOrder: 3, maxBytes: 10_000_000 });
    const ref = buildKnReference(text, 3);
    expect(ref.raw[2]!.size).toBeGreaterThan(4096);
    expect(model.info.contexts).toEqual(ref.raw.map((m) => m.size));
    let worst = 0;
    for (let j = 0; j < 600; j++) {
      const at = randomInt(rng, 3, text.length);
      const len = randomInt(rng, 0, 3);
      const ctx = text.slice(at - len, at);
      const p = model.probabilities(ctx);
      const q = referenceProbabilities(ref, ctx);
      for (let b = 0; b < 256; b++) worst = Math.max(worst, Math.abs(p[b]! - q[b]!));
    }
    expect(worst).toBeLessThan(PROB_TOL);
  });

  it('the top queried order uses raw counts, shorter ones continuation counts', async () => {
    // "xa" then "b" always, but "a" is preceded by many bytes: raw and continuation counts differ a lot.
    const text = new TextEncoder().encode('xab'.repeat(30) + 'ya zacbqad');
    const model = await ByteModel.train(text, { maxOrder: 2, maxBytes: 100_000 });
    const ref = buildKnReference(text, 2);
    const pa = model.probabilities(new TextEncoder().encode('a'));
    const qa = referenceProbabilities(ref, new TextEncoder().encode('a'));
    expect(Math.abs(pa[98]! - qa[98]!)).toBeLessThan(PROB_TOL);
    expect(pa[98]!).toBeGreaterThan(0.8); // raw: "a" is followed by "b" 30 of 34 times
  });
});

describe('ByteModel training, files and identity', () => {
  const text = pseudoEnglish(60_000, 3);

  it('is deterministic: the same text and options give identical bytes; strings are UTF-8', async () => {
    const a = await ByteModel.train(text, { maxOrder: 4, maxBytes: 50_000 });
    const b = await ByteModel.train(text.slice(), { maxOrder: 4, maxBytes: 50_000 });
    expect(Buffer.from(a.toBytes()).equals(Buffer.from(b.toBytes()))).toBe(true);
    expect(a.identity).toBe(b.identity);
    expect(a.identity).toMatch(/^[0-9a-f]{16}$/);
    const s = await ByteModel.train(new TextDecoder().decode(text), { maxOrder: 4, maxBytes: 50_000 });
    expect(s.identity).toBe(a.identity);
    const c = await ByteModel.train(text, { maxOrder: 3, maxBytes: 50_000 });
    expect(c.identity).not.toBe(a.identity);
  });

  it('round-trips through bytes and files with identical masses and identity', async () => {
    const model = await ByteModel.train(text, { maxOrder: 5, maxBytes: 200_000 });
    const back = ByteModel.fromBytes(model.toBytes());
    expect(back.identity).toBe(model.identity);
    expect(back.info).toEqual(model.info);
    const path = join(tmp, 'm.tpm');
    await model.save(path);
    expect(readFileSync(path).length).toBe(model.info.bytes);
    const loaded = await ByteModel.load(path);
    expect(loaded.identity).toBe(model.identity);
    for (const ctx of contextsOfEveryLength(text, 5, 5)) {
      expect(back.masses(ctx)).toEqual(model.masses(ctx));
      expect(loaded.masses(ctx)).toEqual(model.masses(ctx));
    }
  });

  it('prunes to maxBytes, dropping rare high-order contexts first', async () => {
    const full = await ByteModel.train(text, { maxOrder: 6, maxBytes: 10_000_000 });
    const ref = buildKnReference(text, 6);
    expect(full.info.contexts).toEqual(ref.raw.map((m) => m.size)); // nothing pruned
    for (const limit of [60_000, 20_000, 5_000]) {
      const small = await ByteModel.train(text, { maxOrder: 6, maxBytes: limit });
      expect(small.info.bytes).toBeLessThanOrEqual(limit);
      expect(small.toBytes().length).toBe(small.info.bytes);
      expect(small.info.contexts[0]).toBe(1);
      for (let k = 0; k <= 6; k++) expect(small.info.contexts[k]!).toBeLessThanOrEqual(full.info.contexts[k]!);
      expect(small.info.contexts[6]!).toBeLessThan(full.info.contexts[6]!);
      // Long contexts go first: a larger share of order-1 contexts than of order-6 ones stays.
      const kept = (k: number) => small.info.contexts[k]! / full.info.contexts[k]!;
      expect(kept(1)).toBeGreaterThan(kept(6));
      // Masses stay a valid distribution after pruning.
      const m = small.masses(text.subarray(100, 106));
      expect(Math.min(...m)).toBeGreaterThanOrEqual(1);
    }
    // A pruned model predicts held-out text worse than the full one, but not absurdly.
    const heldOut = pseudoEnglish(5_000, 99);
    const bFull = full.evaluate(heldOut).bitsPerByte;
    const bSmall = (await ByteModel.train(text, { maxOrder: 6, maxBytes: 5_000 })).evaluate(heldOut).bitsPerByte;
    expect(bSmall).toBeGreaterThan(bFull);
    expect(bSmall).toBeLessThan(8);
  });

  it('evaluate() matches -log2 of the normalized masses', async () => {
    const model = await ByteModel.train(text, { maxOrder: 3, maxBytes: 100_000 });
    const sample = pseudoEnglish(300, 5);
    let bits = 0;
    const pos = new Float64Array(4);
    for (let i = 0; i < sample.length; i++) {
      const len = Math.min(i % 4, 3);
      const b = -Math.log2(model.probabilities(sample.subarray(i - len, i))[sample[i]!]!);
      bits += b;
      pos[i % 4]! += b / 75;
    }
    const r = model.evaluate(sample, { window: 4 });
    expect(r.bitsPerByte).toBeCloseTo(bits / sample.length, 9);
    for (let p = 0; p < 4; p++) expect(r.positionBits[p]!).toBeCloseTo(pos[p]!, 9);
  });

  it('reports progress fractions in [0, 1] ending at 1', async () => {
    const seen: number[] = [];
    await ByteModel.train(pseudoEnglish(3_000_000, 8), { maxOrder: 3, maxBytes: 100_000, onProgress: (f) => seen.push(f) });
    expect(seen.length).toBeGreaterThan(0);
    for (const f of seen) expect(f >= 0 && f <= 1).toBe(true);
    expect(seen[seen.length - 1]).toBe(1);
  });

  it('trains on an empty or one-byte text', async () => {
    for (const t of [new Uint8Array(0), Uint8Array.of(65)]) {
      const m = await ByteModel.train(t, { maxOrder: 2, maxBytes: 4096 });
      const p = m.probabilities(Uint8Array.of(65, 65));
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(ByteModel.fromBytes(m.toBytes()).identity).toBe(m.identity);
    }
  });
});

describe('ByteModel files from outside', () => {
  let small: Uint8Array;
  it('rejects every truncation of a small model', async () => {
    small = (await ByteModel.train(awkwardText().subarray(0, 400), { maxOrder: 2, maxBytes: 100_000 })).toBytes();
    expect(small.length).toBeGreaterThan(300);
    for (let n = 0; n < small.length; n++) expectBadFile(() => ByteModel.fromBytes(small.subarray(0, n)));
    expectBadFile(() => ByteModel.fromBytes(Uint8Array.from([...small, 0])));
  });

  it('rejects every single-byte change (the hash covers the whole file)', () => {
    const rng = mulberry32(21);
    for (let i = 0; i < small.length; i++) {
      const bad = small.slice();
      bad[i] = (bad[i]! + randomInt(rng, 1, 255)) & 255;
      expectBadFile(() => ByteModel.fromBytes(bad));
    }
  });

  it('rejects random multi-byte mutations, rehashed so the structure checks run, without crashing', () => {
    const rng = mulberry32(22);
    let rejected = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bad = small.slice();
      const n = randomInt(rng, 1, 4);
      for (let j = 0; j < n; j++) bad[randomInt(rng, 32, bad.length - 1)] = randomInt(rng, 0, 255);
      rehash(bad);
      try {
        const m = ByteModel.fromBytes(bad);
        // A mutation can still be a valid model (a changed count): it must then behave.
        const masses = m.masses(Uint8Array.of(1, 2));
        expect(Math.min(...masses)).toBeGreaterThanOrEqual(1);
      } catch (e) {
        expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('checks header sizes before allocating', () => {
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const huge = small.slice();
    view(huge).setUint32(32 + 32 * 2, 0xffffffff, true); // order 2 nContexts
    expectBadFile(() => ByteModel.fromBytes(rehash(huge)), /need more bytes than the payload/);
    const entries = small.slice();
    view(entries).setUint32(32 + 32 * 1 + 4, 0x7fffffff, true); // order 1 nEntries
    expectBadFile(() => ByteModel.fromBytes(rehash(entries)), /need more bytes/);
    const payload = small.slice();
    view(payload).setBigUint64(16, 1n << 62n, true);
    expectBadFile(() => ByteModel.fromBytes(rehash(payload)), /payload bytes/);
    const order = small.slice();
    view(order).setUint16(6, 60000, true);
    expectBadFile(() => ByteModel.fromBytes(rehash(order)), /max order 60000/);
    const version = small.slice();
    view(version).setUint16(4, 9, true);
    expectBadFile(() => ByteModel.fromBytes(rehash(version)), /format version 9/);
    const discount = small.slice();
    view(discount).setUint32(32 + 8, 5 << 16, true);
    expectBadFile(() => ByteModel.fromBytes(rehash(discount)), /discount/);
    expectBadFile(() => ByteModel.fromBytes(new TextEncoder().encode('not a model at all, just some text here')), /magic/);
  });

  it('load() names the file', async () => {
    const path = join(tmp, 'bad.tpm');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path, small.subarray(0, 50));
    await expect(ByteModel.load(path)).rejects.toThrow(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid`));
  });
});

describe('ByteModel arguments', () => {
  it('names the bad argument', async () => {
    await expect(ByteModel.train(123 as never)).rejects.toThrow(/^text: expected a Uint8Array or a string, received 123/);
    await expect(ByteModel.train('abc', { maxOrder: 0 })).rejects.toThrow(RangeError);
    await expect(ByteModel.train('abc', { maxOrder: 13 })).rejects.toThrow(/opts\.maxOrder: expected an integer in \[1, 12\]/);
    await expect(ByteModel.train('abc', { maxBytes: 100 })).rejects.toThrow(/opts\.maxBytes/);
    await expect(ByteModel.train('abc', { maxOrdr: 3 } as never)).rejects.toThrow(/did you mean "maxOrder"/);
    await expect(ByteModel.train('abc', { onProgress: 5 } as never)).rejects.toThrow(/opts\.onProgress/);
    expect(() => ByteModel.fromBytes('abc' as never)).toThrow(/^bytes: expected a Uint8Array, received "abc"/);
    await expect(ByteModel.load(42 as never)).rejects.toThrow(/^path: /);
    const m = await ByteModel.train('abcabc', { maxOrder: 2 });
    expect(() => m.masses([1, 2] as never)).toThrow(/^context: expected a Uint8Array/);
    expect(() => m.evaluate(Uint8Array.of(1), { window: -1 })).toThrow(/opts\.window/);
  });

  it('the native binding re-checks its arguments', async () => {
    const addon = native();
    expect(() => addon.ByteModel.fromBytes(7 as never)).toThrow(TypeError);
    expect(() => new (addon.ByteModel as unknown as new () => unknown)()).toThrow(/ByteModel: use ByteModel\.fromBytes/);
    await expect(addon.trainByteModelAsync(Uint8Array.of(1), { maxOrder: 99, maxBytes: 8000 })).rejects.toThrow(/maxOrder/);
    await expect(addon.trainByteModelAsync('x' as never, { maxOrder: 2, maxBytes: 8000 })).rejects.toThrow(/^text: expected a Uint8Array/);
    const m = await addon.trainByteModelAsync(Uint8Array.of(1, 2, 3), { maxOrder: 2, maxBytes: 8000 });
    expect(() => m.masses(new Uint16Array(2) as never)).toThrow(/context: expected a Uint8Array/);
    expect(() => m.evaluate(Uint8Array.of(1), 1e9)).toThrow(/window/);
    expect(() => m.benchMasses(Uint8Array.of(1), -1)).toThrow(/window/);
    expect(m.benchMasses(Uint8Array.of(1, 2, 3), 2)).toBeGreaterThan(0);
  });
});

describe('the embedded default model', () => {
  it('loads, is cached, and is sane', () => {
    const m = ByteModel.loadDefault();
    expect(ByteModel.loadDefault()).toBe(m);
    const info = m.info;
    expect(info.kind).toBe('kneser-ney');
    expect(info.maxOrder).toBeGreaterThanOrEqual(6);
    expect(info.bytes).toBeLessThanOrEqual(8_000_000);
    expect(info.bytes).toBe(readFileSync(ByteModel.defaultPath()).length);
    expect(info.trainedBytes).toBeGreaterThan(30_000_000);
    expect(info.contexts[0]).toBe(1);
    expect(info.identity).toMatch(/^[0-9a-f]{16}$/);
    const enc = new TextEncoder();
    expect(m.probabilities(enc.encode('of th'))['e'.charCodeAt(0)]!).toBeGreaterThan(0.5);
    const english = enc.encode('The quick brown fox jumps over the lazy dog, and the dog does not seem to mind it at all. ');
    expect(m.evaluate(english).bitsPerByte).toBeLessThan(3);
    expect(m.evaluate(english, { window: 8 }).bitsPerByte).toBeLessThan(4);
  });
});
