// A tiny byte-level BPE implementing TokenVocab (for tests where brute force
// is cheap): ids 0..255 are the single bytes, then one id per merge (ranked
// in order), then one special token. Pre-tokens come from a GPT-2-like regex
// over the bytes read as latin1 (byte offsets = character offsets), with the
// `\s+(?!\S)` lookahead so that the last pre-token start can be tested:
//   / ?[a-z]+| ?[0-9]| ?[^\sa-z0-9]+|\s+(?!\S)|\s+/
// BPE per pre-token: repeatedly merge the adjacent pair of lowest rank.
// Also: a deterministic random TokenLm whose row depends on the whole context,
// and the brute-force byte distribution (every token sequence, masked at
// every prefix by "is a prefix of some canonical encoding", summed).
import type { TokenVocab } from '../../lib/tokenizer/types.js';
import type { TokenLm } from '../../lib/tokenizer/token-lm.js';

export const PRETOKEN = / ?[a-z]+| ?[0-9]| ?[^\sa-z0-9]+|\s+(?!\S)|\s+/gs;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

export function tinyBpe(merges: readonly string[], name = 'tiny'): TokenVocab {
  const bytes: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) bytes.push(Uint8Array.of(b));
  const byKey = new Map<string, number>();
  for (let b = 0; b < 256; b++) byKey.set(String.fromCharCode(b), b);
  const rank = new Map<string, number>(); // "left\0right" -> merged id
  for (const m of merges) {
    const [l, r] = m.split('|') as [string, string];
    const id = bytes.length;
    bytes.push(Uint8Array.from(Buffer.from(l + r, 'latin1')));
    byKey.set(l + r, id);
    rank.set(`${byKey.get(l)}\0${byKey.get(r)}`, id);
  }
  const special = bytes.length;
  bytes.push(Uint8Array.from(Buffer.from('<|end|>', 'latin1')));
  const size = bytes.length;

  const bpe = (piece: number[]): number[] => {
    const ids = piece.slice();
    for (;;) {
      let best = -1, bestId = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const id = rank.get(`${ids[i]}\0${ids[i + 1]}`);
        if (id !== undefined && id < bestId) {
          bestId = id;
          best = i;
        }
      }
      if (best < 0) return ids;
      ids.splice(best, 2, bestId);
    }
  };
  const pretokenStarts = (b: Uint8Array): number[] => {
    const out: number[] = [];
    for (const m of latin1(b).matchAll(PRETOKEN)) out.push(m.index!);
    return out;
  };
  const encodeBytes = (b: Uint8Array): number[] => {
    const starts = pretokenStarts(b);
    const out: number[] = [];
    for (let i = 0; i < starts.length; i++) out.push(...bpe(Array.from(b.subarray(starts[i], starts[i + 1] ?? b.length))));
    return out;
  };
  const decodeBytes = (ids: ArrayLike<number>): Uint8Array => Buffer.concat(Array.from(ids, (id) => bytes[id]!));
  return {
    name,
    kind: 'byte-bpe',
    size,
    tokenBytes: (id) => bytes[id]!,
    isSpecial: (id) => id === special,
    isUsed: (id) => id >= 0 && id < size,
    idOf: (b) => byKey.get(latin1(b)) ?? -1,
    encodeBytes,
    encode: (text) => encodeBytes(Buffer.from(text, 'utf8')),
    decodeBytes,
    decode: (ids) => Buffer.from(decodeBytes(ids)).toString('utf8'),
    pretokenStarts,
    isCanonical: (ids) => {
      for (let i = 0; i < ids.length; i++) if (ids[i] === special) return false;
      const e = encodeBytes(decodeBytes(ids));
      return e.length === ids.length && e.every((v, i) => v === ids[i]);
    },
  };
}

/** A dense random LM: row = normalized hash weights of (context, id); sharpened so some tokens dominate. */
export function hashLm(vocabSize: number, seed = 1, maxContext?: number): TokenLm {
  const row = new Float64Array(vocabSize);
  return {
    vocabSize,
    maxContext,
    nextTokenProbs(context) {
      let h = (seed * 0x9e3779b1) >>> 0;
      for (const t of context) h = Math.imul(h ^ (t + 0x7f4a7c15), 0x85ebca6b) >>> 0;
      let sum = 0;
      for (let i = 0; i < vocabSize; i++) {
        let x = Math.imul(h ^ Math.imul(i + 1, 0xc2b2ae35), 0x27d4eb2f) >>> 0;
        x ^= x >>> 15;
        const u = (x >>> 0) / 2 ** 32;
        row[i] = u * u * u + 1e-3;
        sum += row[i]!;
      }
      for (let i = 0; i < vocabSize; i++) row[i] = row[i]! / sum;
      return row;
    },
  };
}

/**
 * Reference "T is a prefix of some canonical encoding": encodeBytes(decode(T) y)
 * starts with T for y = nothing or ANY single ASCII byte (129 tries, memoized
 * by T). The regexes look one character ahead, so one character decides
 * every boundary inside decode(T) (bytes >= 0x80 are left out: alone they are
 * not UTF-8, and a ByteBpeVocab merges an invalid tail with the last
 * pre-token, which is not a continuation of the text).
 */
export function refCanonicalPrefix(vocab: TokenVocab, memo: Map<string, boolean>, seq: readonly number[]): boolean {
  const key = seq.join(',');
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  let ok = false;
  if (seq.every((t) => vocab.isUsed(t) && !vocab.isSpecial(t))) {
    const bytes = vocab.decodeBytes(seq);
    const z = new Uint8Array(bytes.length + 1);
    z.set(bytes);
    const prefixOf = (enc: number[]): boolean => enc.length >= seq.length && seq.every((t, i) => enc[i] === t);
    ok = prefixOf(vocab.encodeBytes(bytes));
    for (let y = 0; y < 128 && !ok; y++) {
      z[bytes.length] = y;
      ok = prefixOf(vocab.encodeBytes(z));
    }
  }
  memo.set(key, ok);
  return ok;
}

/**
 * Brute force: P(next byte | x) by enumerating every token sequence that
 * matches x (every prefix checked with the full definition, no split):
 * one whose last token runs past x adds Q(T) to the byte after x in that
 * token; one that ends exactly at x adds Q(T) P(t | T) to t's first byte for
 * every masked-in next token t. Normalized over the bytes. Float64.
 * mask: 'prefix' (default: refCanonicalPrefix), 'canonical' (the official
 * "is canonical" check, vocab.isCanonical), 'none'.
 */
export function bruteNextByte(
  vocab: TokenVocab, lm: TokenLm, x: Uint8Array,
  opts: { mask?: 'prefix' | 'canonical' | 'none'; prefix?: number[]; memo?: Map<string, boolean> } = {},
): Float64Array {
  const mode = opts.mask ?? 'prefix';
  const memo = opts.memo ?? new Map<string, boolean>();
  const masked = (seq: number[]): boolean =>
    mode === 'none' ? false : mode === 'canonical' ? !vocab.isCanonical(seq) : !refCanonicalPrefix(vocab, memo, seq);
  const prefix = opts.prefix ?? [];
  const usable: number[] = [];
  for (let id = 0; id < vocab.size; id++) if (vocab.tokenBytes(id).length > 0 && vocab.isUsed(id) && !vocab.isSpecial(id)) usable.push(id);
  const dist = new Float64Array(256);
  const rowOf = (seq: number[]): Float64Array => {
    const all = [...prefix, ...seq];
    return lm.nextTokenProbs(lm.maxContext === undefined ? all : all.slice(Math.max(0, all.length - lm.maxContext))).slice();
  };
  const n = x.length;
  const walk = (pos: number, seq: number[], q: number): void => {
    const row = rowOf(seq);
    for (const t of usable) {
      const w = vocab.tokenBytes(t);
      const next = [...seq, t];
      if (pos === n) {
        if (!masked(next)) dist[w[0]!] = dist[w[0]!]! + q * row[t]!;
        continue;
      }
      const m = Math.min(w.length, n - pos);
      let ok = true;
      for (let i = 0; i < m && ok; i++) if (w[i] !== x[pos + i]) ok = false;
      if (!ok || masked(next)) continue;
      if (pos + w.length > n) dist[w[n - pos]!] = dist[w[n - pos]!]! + q * row[t]!;
      else walk(pos + w.length, next, q * row[t]!);
    }
  };
  walk(0, [], 1);
  let sum = 0;
  for (const v of dist) sum += v;
  for (let b = 0; b < 256; b++) dist[b] = dist[b]! / sum;
  return dist;
}
