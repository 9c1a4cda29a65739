// zipBytes / unzipBytes (lib/coding/zip.ts): option checks by message, the
// header fields each mode writes (read back with readContainer), the
// equal-info payload as big-endian (or 8-bit) tokens of the tokenizer,
// progress calls, and the refusals of files that do not match. Stryker
// showed defaults and checks here that could change with no test failing.
import { describe, expect, test } from 'vitest';
import { readContainer, writeContainer } from '../../lib/coding/container.js';
import { ByteModel, EqualInfoTokenizer, TokenpressError, unzipBytes, ZIP_MODES, zipBytes } from '../../lib/index.js';

const data = new TextEncoder().encode('the quick brown fox jumps over the lazy dog; '.repeat(20));

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('zipBytes: options', () => {
  test('ZIP_MODES', () => {
    expect(ZIP_MODES).toEqual(['adaptive', 'static', 'equal-info']);
  });
  const cases: [unknown, unknown, ErrorConstructor, string][] = [
    ['x', undefined, TypeError, 'data: expected a Uint8Array, received "x"'],
    [data, { mode: 'zip' }, TypeError, 'options.mode: expected one of adaptive, static, equal-info, received "zip"'],
    [data, { mode: 'static', model: {} }, TypeError, 'options.model: expected a ByteModel, received an object'],
    [data, { onProgress: 5 }, TypeError, 'options.onProgress: expected a function (bytesDone, totalBytes) => void, received 5'],
    [data, { mode: 'equal-info', windowBits: 15 }, RangeError, 'options.windowBits: expected an integer in [16, 2048], received 15'],
    [data, { mode: 'equal-info', windowBits: 2049 }, RangeError, 'options.windowBits: expected an integer in [16, 2048], received 2049'],
    [data, { mode: 'equal-info', tokenBits: 12 }, TypeError, 'options.tokenBits: expected 8 or 16, received 12'],
    [data, { mode: 'equal-info', chunkBytes: 0 }, RangeError, 'options.chunkBytes: expected an integer >= 1, received 0'],
    [data, { windowBits: 16 }, TypeError, "options: expected no model, windowBits or tokenBits with mode 'adaptive', received an object"],
    [data, { tokenBits: 8 }, TypeError, "options: expected no model, windowBits or tokenBits with mode 'adaptive'"],
    [data, { mode: 'adaptive', model: ByteModel.loadDefault() }, TypeError, "options: expected no model, windowBits or tokenBits with mode 'adaptive'"],
    [data, { level: 9 }, TypeError, 'options: unknown option "level"'],
  ];
  for (const [d, options, kind, message] of cases) {
    test(message, async () => {
      const e = await rejection(zipBytes(d as Uint8Array, options as never));
      expect(e).toBeInstanceOf(kind);
      expect(e.message).toContain(message);
    });
  }
});

describe('zipBytes: what each mode writes', () => {
  const model = ByteModel.loadDefault();
  test('adaptive (the default): no model, no windows; progress ends at (n, n)', async () => {
    const calls: [number, number][] = [];
    const f = await zipBytes(data, { onProgress: (a, b) => calls.push([a, b]) });
    expect(readContainer(f).header).toEqual({ mode: 'adaptive', modelIdentity: null, originalLength: data.length, checksum: expect.any(Number) });
    expect(calls.at(-1)).toEqual([data.length, data.length]);
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('static: the model identity; progress called once with (n, n)', async () => {
    const calls: [number, number][] = [];
    const f = await zipBytes(data, { mode: 'static', onProgress: (a, b) => calls.push([a, b]) });
    expect(readContainer(f).header).toMatchObject({ mode: 'static', modelIdentity: model.info.identity, originalLength: data.length });
    expect(calls).toEqual([[data.length, data.length]]);
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('equal-info defaults 16 / 16: the payload is the tokens, big-endian', async () => {
    const f = await zipBytes(data, { mode: 'equal-info' });
    const { header, payload } = readContainer(f);
    expect(header).toMatchObject({ mode: 'equal-info', modelIdentity: model.info.identity, windowBits: 16, tokenBits: 16 });
    const ids = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16 }).encode(data);
    const want = new Uint8Array(ids.length * 2);
    ids.forEach((t, i) => { want[2 * i] = t >> 8; want[2 * i + 1] = t & 0xff; });
    expect(payload).toEqual(want);
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('equal-info, 8-bit tokens: one byte per token', async () => {
    const f = await zipBytes(data, { mode: 'equal-info', windowBits: 24, tokenBits: 8 });
    const { header, payload } = readContainer(f);
    expect(header).toMatchObject({ windowBits: 24, tokenBits: 8 });
    expect(Array.from(payload)).toEqual(Array.from(new EqualInfoTokenizer({ model, windowBits: 24, tokenBits: 8 }).encode(data)));
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('equal-info chunks: 8 chunks per progress step, each chunk its own windows', async () => {
    const calls: [number, number][] = [];
    const chunkBytes = 50; // 900 bytes: 18 chunks, progress after 8, 16 and 18 of them
    const f = await zipBytes(data, { mode: 'equal-info', chunkBytes, onProgress: (a, b) => calls.push([a, b]) });
    expect(calls).toEqual([[400, 900], [800, 900], [900, 900]]);
    const tok = new EqualInfoTokenizer({ model, windowBits: 16, tokenBits: 16 });
    let n = 0;
    for (let s = 0; s < data.length; s += chunkBytes) n += tok.encode(data.subarray(s, s + chunkBytes)).length;
    expect(readContainer(f).payload.length).toBe(2 * n);
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('equal-info windows that do not fill whole tokens: one chunk, whatever chunkBytes says', async () => {
    const calls: [number, number][] = [];
    const f = await zipBytes(data, { mode: 'equal-info', windowBits: 20, tokenBits: 16, chunkBytes: 10, onProgress: (a, b) => calls.push([a, b]) });
    expect(calls).toEqual([[900, 900]]);
    expect(await unzipBytes(f)).toEqual(data);
  });
  test('an empty input', async () => {
    for (const mode of ZIP_MODES) expect(await unzipBytes(await zipBytes(new Uint8Array(0), { mode }))).toEqual(new Uint8Array(0));
  });
});

describe('unzipBytes: refusals', () => {
  test('options, by message', async () => {
    const f = await zipBytes(data, { mode: 'static' });
    const cases: [unknown, unknown, ErrorConstructor, string][] = [
      [[1], undefined, TypeError, 'file: expected a Uint8Array, received an array of length 1'],
      [f, { maxBytes: -1 }, RangeError, 'options.maxBytes: expected an integer >= 0, received -1'],
      [f, { model: 'm' }, TypeError, 'options.model: expected a ByteModel, received "m"'],
      [f, { onProgress: 5 }, TypeError, 'options.onProgress: expected a function (bytesDone, totalBytes) => void, received 5'],
      [f, { mode: 'static' }, TypeError, 'options: unknown option "mode"'],
    ];
    for (const [file, options, kind, message] of cases) {
      const e = await rejection(unzipBytes(file as Uint8Array, options as never));
      expect(e).toBeInstanceOf(kind);
      expect(e.message).toContain(message);
    }
  });
  test('maxBytes: the length itself passes, one less refuses', async () => {
    const f = await zipBytes(data);
    expect(await unzipBytes(f, { maxBytes: data.length })).toEqual(data);
    const e = await rejection(unzipBytes(f, { maxBytes: data.length - 1 }));
    expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
    expect(e.message).toContain(`original length ${data.length} bytes exceeds the limit of ${data.length - 1} bytes`);
  });
  test('a file made with another model', async () => {
    const other = await ByteModel.train(new TextEncoder().encode('abcabcabd'.repeat(50)), { maxOrder: 2 });
    const f = await zipBytes(data, { mode: 'static', model: other });
    const e = await rejection(unzipBytes(f));
    expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
    expect(e.message).toBe(`the file was made with model ${other.info.identity}, but the model given is ${ByteModel.loadDefault().info.identity}`);
    expect(await unzipBytes(f, { model: other })).toEqual(data);
  });
  test('16-bit tokens in an odd number of bytes; a payload that decodes to another length', async () => {
    const model = ByteModel.loadDefault();
    const odd = writeContainer({ mode: 'equal-info', modelIdentity: model.info.identity, windowBits: 16, tokenBits: 16, originalLength: 3, checksum: 0 }, Uint8Array.of(1, 2, 3));
    const e1 = await rejection(unzipBytes(odd));
    expect((e1 as TokenpressError).code).toBe('ERR_BAD_FILE');
    expect(e1.message).toBe('payload: expected an even number of bytes for 16-bit tokens, received 3');
    const good = readContainer(await zipBytes(data, { mode: 'equal-info', tokenBits: 8, windowBits: 16 }));
    const long = writeContainer({ ...good.header, originalLength: data.length + 5 }, good.payload);
    const e2 = await rejection(unzipBytes(long));
    expect((e2 as TokenpressError).code).toBe('ERR_BAD_FILE');
  });
});
