// Regressions found by hostile input to the parsers and decoders (issue 12:
// the fuzz harnesses in test/fuzz/, docs/fuzzing.md). Each case failed or
// crashed before its fix; its input is also in test/fuzz/corpus/.
import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { native } from '../../lib/native.js';
import { TokenpressError } from '../../lib/errors.js';
import { unzipBytes, zipBytes } from '../../lib/coding/zip.js';
import { decodeSafetensors, encodeSafetensors } from '../../lib/kv/eval/safetensors.js';

/** A raw table where byte 0 has the largest frequency a table allows (T - 255). */
function densestTable(totalLog2: number): Uint32Array {
  const freqs = new Uint32Array(256).fill(1);
  freqs[0] = 2 ** totalLog2 - 255;
  return freqs;
}

/** Rewrites a .tpz header field (u64 at `at`) and its header CRC. */
function withU64(file: Uint8Array, at: number, value: bigint): Uint8Array {
  const out = Uint8Array.from(file);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(at, value, true);
  dv.setUint32(40, crc32(out.subarray(0, 40)), true);
  return out;
}

describe('decoded lengths are bounded by the payload before anything is allocated', () => {
  it('rawDecode refuses a length its payload cannot hold, naming the bound (it allocated the length first)', () => {
    const freqs = densestTable(16);
    // Before: a Uint8Array of 2^32 - 1 bytes was allocated, then the stream was found corrupt.
    expect(() => native().rawDecode({ freqs, totalLog2: 16, payload: new Uint8Array(8), length: 2 ** 32 - 1, maxBytes: 2 ** 32 }))
      .toThrow(/length: expected at most 12807 bytes \(the most a 8-byte payload can hold\), received 4294967295/);
    expect(() => native().rawDecode({ freqs: densestTable(12), totalLog2: 12, payload: new Uint8Array(8), length: 784, maxBytes: 2 ** 32 }))
      .toThrow(/length: expected at most 783 bytes/);
  });

  it('the bound admits the densest stream an encoder writes, at every frequency total', () => {
    for (const totalLog2 of [12, 13, 14, 15, 16]) {
      const freqs = densestTable(totalLog2);
      const data = new Uint8Array(200000); // every byte the most likely one
      const payload = native().rawEncode({ freqs, totalLog2, data });
      const back = native().rawDecode({ freqs, totalLog2, payload, length: data.length, maxBytes: data.length });
      expect(back.length).toBe(data.length);
      expect(back.every((b) => b === 0)).toBe(true);
    }
  });

  it('a static .tpz claiming 4 GiB from a few bytes is refused as ERR_BAD_FILE', async () => {
    const file = await zipBytes(new TextEncoder().encode('hello'), { mode: 'static' });
    const huge = withU64(file, 20, 2n ** 32n);
    const err = await unzipBytes(huge).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenpressError);
    expect((err as TokenpressError).code).toBe('ERR_BAD_FILE');
    expect((err as Error).message).toMatch(/expected at most \d+ bytes \(the most a \d+-byte payload can hold\)/);
  });
});

/** A safetensors file from a header written as JSON text (so "__proto__" is a plain key) and its data bytes. */
function safetensorsFile(headerJson: string, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(headerJson);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

describe('safetensors names that JavaScript objects treat specially (found by the safetensors fuzz target)', () => {
  const four = new Uint8Array(Float32Array.of(2.5).buffer);

  it('a tensor named "__proto__" survives decode -> encode -> decode (encode dropped it, writing a file it refused)', () => {
    const file = safetensorsFile('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four);
    const a = decodeSafetensors(file);
    expect([...a.tensors.keys()]).toEqual(['__proto__']);
    const b = decodeSafetensors(encodeSafetensors(a.tensors, a.metadata));
    expect([...b.tensors.keys()]).toEqual(['__proto__']);
    expect(Array.from(b.tensors.get('__proto__')!.data)).toEqual([2.5]);
  });

  it('a metadata key "__proto__" is kept, as an own property (it was dropped)', () => {
    const file = safetensorsFile('{"__metadata__":{"__proto__":"x","format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four);
    const a = decodeSafetensors(file);
    expect(Object.keys(a.metadata).sort()).toEqual(['__proto__', 'format']);
    expect(Object.getOwnPropertyDescriptor(a.metadata, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(a.metadata)).toBe(Object.prototype);
    const b = decodeSafetensors(encodeSafetensors(a.tensors, a.metadata));
    expect(Object.getOwnPropertyDescriptor(b.metadata, '__proto__')?.value).toBe('x');
  });

  it('encodeSafetensors refuses a name given twice (it wrote a file with unreferenced bytes that no reader accepts)', () => {
    const t = { dtype: 'f32' as const, shape: [1], data: Float32Array.of(1) };
    expect(() => encodeSafetensors([['a', t], ['a', t]])).toThrow(/encodeSafetensors: tensor name "a" appears twice/);
  });
});
