// The JS fuzz targets: for each, seeds(), an optional format-aware
// mutate(), and check(input), which returns an outcome string for an
// accepted or properly refused input and throws on a property violation.
// They load the compiled library from dist/ (npm run build:ts).
import { crc32 } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../../dist/lib/', import.meta.url));
const load = (p) => import(join(DIST, p));

const { readContainer, writeContainer } = await load('coding/container.js');
const { decodeSafetensors, encodeSafetensors, readSafetensors } = await load('kv/eval/safetensors.js');
const { TokenpressError } = await load('errors.js');

/** Outcome of a refusal, or rethrows: only TokenpressError ERR_BAD_FILE is a proper refusal of a file. */
function refused(e) {
  if (e instanceof TokenpressError && e.code === 'ERR_BAD_FILE') return `bad: ${e.message}`;
  throw new Error(`not an ERR_BAD_FILE refusal: ${e?.name} ${e?.code ?? ''} ${e?.message}`, { cause: e });
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const u64 = (b, at, v) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, BigInt(v), true);

/** A .tpz image with its payload-length field and header CRC made consistent (so mutations get past them). */
function fixContainer(r, b) {
  if (b.length < 44) return b;
  const out = Uint8Array.from(b);
  if (r.next() < 0.8) u64(out, 32, out.length - 44);
  if (r.next() < 0.3) u64(out, 20, r.pick([0, 1, 2, 100, 0xffff, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1]));
  if (r.next() < 0.85) new DataView(out.buffer).setUint32(40, crc32(out.subarray(0, 40)), true);
  return out;
}

const TEXTS = ['', 'a', 'Hello, world! Hello, world!', 'The quick brown fox jumps over the lazy dog. 0123456789\n'.repeat(3)];
const enc = (s) => new TextEncoder().encode(s);

export const targets = {
  container: {
    async seeds() {
      const out = [];
      for (const t of TEXTS) {
        const data = enc(t);
        const base = { originalLength: data.length, checksum: crc32(data) };
        out.push(writeContainer({ mode: 'adaptive', modelIdentity: null, ...base }, data.subarray(0, 8)));
        out.push(writeContainer({ mode: 'static', modelIdentity: '0123456789abcdef', ...base }, data));
        out.push(writeContainer({ mode: 'equal-info', modelIdentity: 'fedcba9876543210', windowBits: 16, tokenBits: 8, ...base }, data));
      }
      return out;
    },
    mutate: (r, b, corpus, mutateBytes) => fixContainer(r, mutateBytes(r, b, corpus)),
    check(input) {
      let res;
      try {
        res = readContainer(input);
      } catch (e) {
        return refused(e);
      }
      // An accepted file is exactly what writeContainer makes of its parts.
      const again = writeContainer(res.header, res.payload);
      if (!same(again, input)) throw new Error('readContainer -> writeContainer does not give the file back');
      if (res.header.originalLength > 2 ** 32) throw new Error('originalLength above the default limit was accepted');
      return `ok: ${res.header.mode} ${res.header.tokenBits ?? ''}`;
    },
  },

  safetensors: {
    async seeds() {
      const f32 = { dtype: 'f32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, Infinity, NaN]) };
      const f16 = { dtype: 'f16', shape: [4], data: Uint16Array.from([0x3c00, 0, 0x7c00, 0x8001]) };
      const bf16 = { dtype: 'bf16', shape: [1, 1, 2], data: Uint16Array.from([0x3f80, 0xbf80]) };
      const scalar = { dtype: 'f32', shape: [], data: Float32Array.from([7]) };
      const empty = { dtype: 'f16', shape: [0, 3], data: new Uint16Array(0) };
      return [
        encodeSafetensors([['a', f32]]),
        encodeSafetensors([['a', f32], ['b', f16], ['c', bf16]], { format: 'pt', note: 'x' }),
        encodeSafetensors([['s', scalar], ['e', empty]]),
        encodeSafetensors([]),
      ];
    },
    mutate(r, b, corpus, mutateBytes) {
      if (r.next() < 0.5 && b.length >= 8) {
        const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
        let json;
        try {
          json = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
        } catch {
          json = undefined;
        }
        if (json && typeof json === 'object') {
          mutateJson(r, json);
          const head = enc(JSON.stringify(json));
          let data = b.subarray(8 + Math.min(n, b.length - 8));
          if (r.next() < 0.3) data = data.subarray(0, r.int(data.length + 1));
          const out = new Uint8Array(8 + head.length + data.length);
          u64(out, 0, head.length);
          out.set(head, 8);
          out.set(data, 8 + head.length);
          return out;
        }
      }
      const out = mutateBytes(r, b, corpus);
      if (out.length >= 8 && r.next() < 0.3) u64(out, 0, r.pick([0, 1, 2, out.length - 8, 2 ** 32, 100 * 2 ** 20 + 1]));
      return out;
    },
    check(input) {
      let a, aErr;
      try {
        a = decodeSafetensors(input);
      } catch (e) {
        aErr = refused(e);
      }
      // readSafetensors reads the same bytes from a file: same verdict, same tensors.
      const dir = mkdtempSync(join(tmpdir(), 'tp-fuzz-'));
      let b, bErr;
      try {
        writeFileSync(join(dir, 'x.safetensors'), input);
        try {
          b = readSafetensors(join(dir, 'x.safetensors'));
        } catch (e) {
          bErr = refused(e);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if ((aErr === undefined) !== (bErr === undefined)) throw new Error(`decodeSafetensors and readSafetensors disagree: ${aErr ?? 'ok'} / ${bErr ?? 'ok'}`);
      if (aErr) return aErr;
      checkContents(a);
      checkAgainstHeader(a, input);
      sameContents(a, b, 'readSafetensors');
      sameContents(a, decodeSafetensors(encodeSafetensors(a.tensors, a.metadata)), 'encode -> decode');
      return `ok: ${[...a.tensors.values()].map((t) => `${t.dtype}[${t.shape.length}]`).join(',')}`;
    },
  },

  zip: {
    async seeds() {
      const { zipBytes } = await load('index.js');
      const out = [];
      for (const t of TEXTS) {
        const data = enc(t);
        out.push(await zipBytes(data, { mode: 'adaptive' }));
        out.push(await zipBytes(data, { mode: 'static' }));
        out.push(await zipBytes(data, { mode: 'equal-info', windowBits: 16, tokenBits: 16 }));
        out.push(await zipBytes(data, { mode: 'equal-info', windowBits: 20, tokenBits: 8 }));
      }
      return out;
    },
    mutate: (r, b, corpus, mutateBytes) => fixContainer(r, mutateBytes(r, b, corpus)),
    async check(input) {
      const { unzipBytes } = await load('index.js');
      let out;
      try {
        out = await unzipBytes(input);
      } catch (e) {
        return refused(e);
      }
      // unzipBytes checked the length and CRC-32: re-check the length against the header.
      const declared = Number(new DataView(input.buffer, input.byteOffset).getBigUint64(20, true));
      if (out.length !== declared) throw new Error(`unzipBytes returned ${out.length} bytes, the header says ${declared}`);
      return `ok: mode ${input[6]}`;
    },
  },
};

function checkContents(c) {
  for (const [name, t] of c.tensors) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== numel) throw new Error(`tensor ${name}: ${t.data.length} elements for shape [${t.shape}]`);
    const want = t.dtype === 'f32' ? Float32Array : Uint16Array;
    if (!(t.data instanceof want)) throw new Error(`tensor ${name}: ${t.dtype} data is a ${t.data.constructor.name}`);
  }
  for (const [k, v] of Object.entries(c.metadata)) if (typeof v !== 'string') throw new Error(`metadata ${k} is not a string`);
}

/** Every name in the JSON header (parsed here, independently) is a tensor or a metadata key of the result. */
function checkAgainstHeader(c, input) {
  const n = Number(new DataView(input.buffer, input.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(input.subarray(8, 8 + n)));
  const names = Object.keys(json).filter((k) => k !== '__metadata__').sort();
  if (names.join('\u0000') !== [...c.tensors.keys()].sort().join('\u0000')) throw new Error(`tensor names differ from the header's: ${JSON.stringify(names)}`);
  const meta = Object.keys(json.__metadata__ ?? {}).sort();
  if (meta.join('\u0000') !== Object.keys(c.metadata).sort().join('\u0000')) throw new Error(`metadata keys differ from the header's: ${JSON.stringify(meta)}`);
}

function sameContents(a, b, what) {
  const names = (c) => [...c.tensors.keys()].sort().join('\u0000');
  if (names(a) !== names(b)) throw new Error(`${what}: different tensor names`);
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name);
    if (u.dtype !== t.dtype || u.shape.join() !== t.shape.join()) throw new Error(`${what}: tensor ${name} differs in dtype or shape`);
    const x = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const y = new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength);
    if (!same(x, y)) throw new Error(`${what}: tensor ${name} data differs`);
  }
  if (JSON.stringify(a.metadata) !== JSON.stringify(b.metadata)) throw new Error(`${what}: metadata differs`);
}

const ODD = [-1, 0, 1, 2, 3, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -0, null, '1', [], {}, true];

/** One structural mutation of a parsed safetensors header (in place). */
function mutateJson(r, json) {
  const names = Object.keys(json);
  const name = names.length ? r.pick(names) : 'x';
  const e = json[name];
  const k = r.int(11);
  if (k === 10 && name in json) { // rename a tensor or metadata key, keeping the file valid otherwise
    const holder = name === '__metadata__' && json[name] && typeof json[name] === 'object' ? json[name] : json;
    const keys = Object.keys(holder);
    const from = keys.length ? r.pick(keys) : 'x';
    const to = r.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', '__metadata__', 'é', 'a'.repeat(300)]);
    const value = holder[from];
    delete holder[from];
    Object.defineProperty(holder, to, { value, enumerable: true, writable: true, configurable: true });
    return;
  }
  if (e === null || typeof e !== 'object' || Array.isArray(e) || k === 9) {
    // Names JavaScript objects treat specially are defined, not assigned.
    Object.defineProperty(json, r.pick(['__metadata__', 'y', name, '', '__proto__', 'constructor', 'toString']), {
      value: r.pick([{ dtype: 'F32', shape: [1], data_offsets: [0, 4] }, { a: 'b' }, { __proto__: 'b' }, { a: 1 }, 'x', null, []]),
      enumerable: true, writable: true, configurable: true,
    });
    return;
  }
  switch (k) {
    case 0: e.dtype = r.pick(['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'XX', '', 3, null]); break;
    case 1: if (Array.isArray(e.shape)) e.shape.push(r.pick(ODD)); else e.shape = [r.int(5)]; break;
    case 2: if (Array.isArray(e.shape) && e.shape.length) e.shape[r.int(e.shape.length)] = r.pick(ODD); else e.shape = r.pick(ODD); break;
    case 3: if (Array.isArray(e.data_offsets)) e.data_offsets[r.int(2)] = r.pick(ODD); break;
    case 4: if (Array.isArray(e.data_offsets)) e.data_offsets.reverse(); break;
    case 5: e.data_offsets = r.pick([[0], [0, 0, 0], 'x', null, [0, 0]]); break;
    case 6: delete e[r.pick(['dtype', 'shape', 'data_offsets'])]; break;
    case 7: e[r.pick(['extra', '__proto__', 'constructor'])] = 1; break;
    case 8: { // shift one tensor's range (overlap or gap)
      if (Array.isArray(e.data_offsets) && e.data_offsets.every((x) => typeof x === 'number')) {
        const d = r.pick([-4, -2, 2, 4]);
        e.data_offsets = e.data_offsets.map((x) => x + d);
      }
      break;
    }
  }
}
