import { describe, expect, it } from 'vitest';
import { zipBytes, unzipBytes } from '../../lib/coding/zip.js';
import { readContainer, writeContainer } from '../../lib/coding/container.js';
import { ByteModel } from '../../lib/coding/model.js';
import { TokenpressError } from '../../lib/errors.js';
import { awkwardDocs, randomBytes, sampleText, testModel } from './coding-fixtures.js';

const enc = new TextEncoder();

async function expectBadFile(p: Promise<unknown>, pattern?: RegExp): Promise<void> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e, 'expected ERR_BAD_FILE').toBeInstanceOf(TokenpressError);
  expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
  if (pattern) expect((e as Error).message).toMatch(pattern);
}

describe('zip / unzip', () => {
  const model = testModel();
  const modes = [
    { mode: 'adaptive' as const },
    { mode: 'static' as const, model },
    { mode: 'equal-info' as const, model, windowBits: 16, tokenBits: 16 as const },
    { mode: 'equal-info' as const, model, windowBits: 24, tokenBits: 16 as const },
    { mode: 'equal-info' as const, model, windowBits: 64, tokenBits: 8 as const, chunkBytes: 1000 },
  ];

  for (const opts of modes) {
    it(`round-trips awkward inputs exactly (${JSON.stringify({ ...opts, model: undefined })})`, async () => {
      for (const doc of [...awkwardDocs(), enc.encode(sampleText(30))]) {
        const file = await zipBytes(doc, opts);
        const { header } = readContainer(file);
        expect(header.mode).toBe(opts.mode);
        expect(header.originalLength).toBe(doc.length);
        const back = await unzipBytes(file, opts.mode === 'adaptive' ? undefined : { model });
        expect(Buffer.from(back).equals(Buffer.from(doc))).toBe(true);
      }
    });
  }

  it('compresses text below 8 bits per byte in every mode', async () => {
    const text = enc.encode(sampleText(60));
    for (const opts of modes) {
      const file = await zipBytes(text, opts);
      expect(file.length * 8, opts.mode).toBeLessThan(text.length * 6);
    }
  });

  it('refuses another model, naming both identities', async () => {
    const other = await ByteModel.train('a completely different training text, '.repeat(50), { maxOrder: 2 });
    const file = await zipBytes(enc.encode(sampleText(2)), { mode: 'static', model });
    await expectBadFile(unzipBytes(file, { model: other }), /the file was made with model [0-9a-f]{16}, but the model given is [0-9a-f]{16}/);
  });

  it('rejects truncated, mutated and hostile files with ERR_BAD_FILE and never crashes (bounded fuzz)', async () => {
    const text = enc.encode(sampleText(4));
    const files = await Promise.all(modes.map((o) => zipBytes(text, o)));
    for (const file of files) {
      for (const cut of [0, 1, 10, 43, 44, 45, file.length - 1]) await expectBadFile(unzipBytes(file.subarray(0, cut), { model }));
    }
    const deadline = Date.now() + 3000;
    let runs = 0;
    for (let k = 0; Date.now() < deadline && k < 600; k++) {
      const file = Uint8Array.from(files[k % files.length]!);
      // Mutate the payload only (header damage is the container's own test), and keep the header CRC valid.
      const at = 44 + (k * 7919) % (file.length - 44);
      file[at]! ^= 1 << (k % 8);
      await expectBadFile(unzipBytes(file, { model }));
      runs++;
    }
    expect(runs).toBeGreaterThan(20);
    // A valid header over a random payload, for each mode.
    for (let k = 0; k < 30; k++) {
      const { header } = readContainer(files[k % files.length]!);
      const hostile = writeContainer(header, randomBytes(1 + (k * 13) % 200, k + 1));
      await expectBadFile(unzipBytes(hostile, { model }));
    }
  });

  it('checks declared sizes before allocating', async () => {
    const { header, payload } = readContainer(await zipBytes(enc.encode('tiny'), { mode: 'static', model }));
    const huge = writeContainer({ ...header, originalLength: 2 ** 40 }, payload);
    await expectBadFile(unzipBytes(huge, { model }), /original length/);
    await expectBadFile(unzipBytes(huge, { model, maxBytes: 2 ** 41 }));
  });

  it('names bad arguments', async () => {
    await expect(zipBytes('text' as never)).rejects.toThrow(/data: expected a Uint8Array/);
    await expect(zipBytes(new Uint8Array(1), { mode: 'nope' as never })).rejects.toThrow(/options.mode: expected one of adaptive, static, equal-info/);
    await expect(zipBytes(new Uint8Array(1), { mode: 'adaptive', windowBits: 16 })).rejects.toThrow(/no model, windowBits or tokenBits with mode 'adaptive'/);
    await expect(zipBytes(new Uint8Array(1), { mode: 'equal-info', model, tokenBits: 12 as never })).rejects.toThrow(/options.tokenBits: expected 8 or 16/);
    await expect(zipBytes(new Uint8Array(1), { mdoe: 'static' } as never)).rejects.toThrow(/did you mean "mode"/);
  });
});
