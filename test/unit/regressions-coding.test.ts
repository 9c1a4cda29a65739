// Regressions of issue 12 in the .tpz entry points: a bad option is a
// TypeError / RangeError naming the option, checked before the file is
// parsed or any work starts (never ERR_BAD_FILE, never a bare
// "x is not a function" after the coding ran).
import { describe, expect, it } from 'vitest';
import { zipBytes, unzipBytes } from '../../lib/coding/zip.js';
import { readContainer } from '../../lib/coding/container.js';
import { TokenpressError } from '../../lib/errors.js';
import { testModel } from './coding-fixtures.js';

const enc = new TextEncoder();

/** The error a promise rejects with (or a thrown one). */
async function failure(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

async function expectOptionError(run: () => Promise<unknown>, kind: ErrorConstructor, message: RegExp): Promise<void> {
  const e = await failure(run);
  expect(e).not.toBeInstanceOf(TokenpressError);
  expect(e).toBeInstanceOf(kind);
  expect(e.message).toMatch(message);
}

describe('unzipBytes: option errors name the option, before the file is parsed', () => {
  const model = testModel();
  const garbage = new Uint8Array(100).fill(7); // not a .tpz file

  it('onProgress: 5 on a valid adaptive file is a TypeError naming options.onProgress (was ERR_BAD_FILE)', async () => {
    const file = await zipBytes(enc.encode('hello hello hello'));
    await expectOptionError(() => unzipBytes(file, { onProgress: 5 as never }), TypeError, /^options\.onProgress: expected a function/);
  });

  it('bad options on a file that is not a .tpz: the option error wins', async () => {
    await expectOptionError(() => unzipBytes(garbage, { onProgress: 'x' as never }), TypeError, /options\.onProgress/);
    await expectOptionError(() => unzipBytes(garbage, { model: 5 as never }), TypeError, /options\.model: expected a ByteModel/);
  });

  it('a model option on an adaptive file is checked too', async () => {
    const file = await zipBytes(enc.encode('hello'));
    await expectOptionError(() => unzipBytes(file, { model: {} as never }), TypeError, /options\.model/);
  });

  it('good options still decode, and a bad file is still ERR_BAD_FILE', async () => {
    const file = await zipBytes(enc.encode('hello hello'), { mode: 'static', model });
    const seen: number[] = [];
    expect(new TextDecoder().decode(await unzipBytes(file, { model, onProgress: (d) => seen.push(d) }))).toBe('hello hello');
    const e = await failure(() => unzipBytes(garbage, { model }));
    expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
  });
});

describe('zipBytes: option errors name the option, before any coding', () => {
  const model = testModel();
  const data = enc.encode('some bytes to code, some bytes to code');

  for (const mode of ['adaptive', 'static', 'equal-info'] as const) {
    it(`onProgress: 5 (${mode}) is a TypeError naming options.onProgress`, async () => {
      const extra = mode === 'adaptive' ? {} : { model };
      await expectOptionError(() => zipBytes(data, { mode, ...extra, onProgress: 5 as never }), TypeError, /^options\.onProgress: expected a function/);
    });
  }

  it('mode-specific options are checked whatever the mode', async () => {
    await expectOptionError(() => zipBytes(data, { mode: 'static', model, chunkBytes: -1 }), RangeError, /options\.chunkBytes/);
    await expectOptionError(() => zipBytes(data, { mode: 'equal-info', model, windowBits: 24, tokenBits: 16, chunkBytes: 0 }), RangeError, /options\.chunkBytes/);
    await expectOptionError(() => zipBytes(data, { mode: 'static', model: 'm' as never }), TypeError, /options\.model/);
  });

  it('good options still produce a file', async () => {
    const file = await zipBytes(data, { mode: 'equal-info', model, windowBits: 24, tokenBits: 16 });
    expect(readContainer(file).header.windowBits).toBe(24);
  });
});
