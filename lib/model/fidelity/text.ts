/**
 * Held-out text for the real-model KV fidelity evaluation: seeded passage
 * choice (for the loss) and the copy / needle test (for retrieval).
 *
 * Passages: the text is cut into `count` equal strata and one passage is
 * drawn per stratum (seeded offset, moved to the next line start), so the
 * passages spread over the whole file (dictionary and fortunes alike) and
 * never overlap when every stratum is longer than a passage.
 *
 * Needle (the copy test; kvpress's needle-in-a-haystack with a pass key):
 *
 *   context  = haystack lines ... "The key is 835124.\n" ... haystack   (exactly `context` bytes)
 *   question = "\nThe key is 8"                                           (fed after compression)
 *   answer   = "35124"                                                    (greedy-decoded, all must match)
 *
 * The needle line starts at a line start at a seeded depth in
 * [depth[0], depth[1]] of the context ("early"); the haystack is a seeded
 * held-out window that does not contain "key is" in any case, so the key is
 * the only one. The question repeats the needle's first 13 bytes (newline
 * included) and its first digit, like "... the key is 8351 ... the key is 8"
 * in the training recipe's copy spans (scripts/train-lm/train.py).
 */
import { rangeError, typeError } from '../../errors.js';
import { checkInteger } from '../../validate.js';
import { Rng } from '../../kv/eval/workload.js';

const NEWLINE = 0x0a;

/** Seeded uniform integers etc. (mulberry32; the synthetic workload's generator). */
export { Rng };

function nextLineStart(text: Uint8Array, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (text[i - 1] === NEWLINE || i === 0) return i;
  return from;
}

/**
 * `count` passages of `length` bytes, one per stratum of the text, each
 * starting at a line start where one exists in its stratum (seeded).
 * Returns subarray views of `text`.
 */
export function samplePassages(text: Uint8Array, count: number, length: number, seed: number): Uint8Array[] {
  if (!(text instanceof Uint8Array)) throw typeError('text', 'a Uint8Array', text);
  checkInteger('count', count, 1);
  checkInteger('length', length, 1);
  checkInteger('seed', seed, 0, 0xffffffff);
  if (text.length < count * length) {
    throw rangeError('text.length', `at least count * length = ${count} * ${length} = ${count * length} bytes`, text.length);
  }
  const rng = new Rng(seed ^ 0x5a17);
  const stratum = Math.floor(text.length / count);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const lo = i * stratum;
    const room = Math.max(0, stratum - length); // offsets in [lo, lo + room] keep the passage in its stratum
    const raw = lo + rng.int(0, room);
    const start = nextLineStart(text, raw, Math.min(lo + room, text.length - length) + 1);
    out.push(text.subarray(start, start + length));
  }
  return out;
}

export interface NeedleOptions {
  /** Context bytes, needle included (what gets compressed); >= 256. */
  context: number;
  /** Key digits; default 6 (first digit 1-9). */
  digits?: number;
  /** Needle depth range as fractions of the context; default [0.1, 0.3] (early). */
  depth?: [number, number];
}

export interface NeedleTrial {
  /** The haystack with the needle line, exactly options.context bytes. */
  context: Uint8Array;
  /** Fed after compression; ends with the key's first digit. */
  question: Uint8Array;
  /** The remaining digits the model must produce. */
  answer: Uint8Array;
  key: string;
  /** Byte range of the needle line in context: [needleStart, needleEnd). */
  needleStart: number;
  needleEnd: number;
}

const enc = new TextEncoder();
const KEY_PHRASE = 'The key is ';

function containsKeyPhrase(bytes: Uint8Array): boolean {
  // "key is" in any case: scan for k/K e/E y/Y ' ' i/I s/S.
  const pat = [0x6b, 0x65, 0x79, 0x20, 0x69, 0x73];
  outer: for (let i = 0; i + pat.length <= bytes.length; i++) {
    for (let j = 0; j < pat.length; j++) {
      const b = bytes[i + j]!;
      const lower = b >= 0x41 && b <= 0x5a ? b + 32 : b;
      if (lower !== pat[j]) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * One needle trial from held-out text (see the module comment), deterministic
 * per (text, seed, options). Trial i of an evaluation uses seed + i.
 */
export function makeNeedleTrial(text: Uint8Array, seed: number, options: NeedleOptions): NeedleTrial {
  if (!(text instanceof Uint8Array)) throw typeError('text', 'a Uint8Array', text);
  checkInteger('seed', seed, 0, 0xffffffff);
  if (options === null || typeof options !== 'object') throw typeError('options', 'an object { context, digits?, depth? }', options);
  const context = checkInteger('options.context', options.context, 256);
  const digits = options.digits === undefined ? 6 : checkInteger('options.digits', options.digits, 2, 32);
  const depth = options.depth ?? [0.1, 0.3];
  if (!Array.isArray(depth) || depth.length !== 2 || !(depth[0] >= 0 && depth[0] <= depth[1] && depth[1] <= 0.9)) {
    throw rangeError('options.depth', 'two fractions [lo, hi] with 0 <= lo <= hi <= 0.9', depth);
  }
  if (text.length < context * 4) throw rangeError('text.length', `at least 4 * options.context = ${4 * context} bytes`, text.length);

  const rng = new Rng((seed * 0x9e3779b1) ^ 0x6e65);
  let key = String(rng.int(1, 9));
  for (let i = 1; i < digits; i++) key += String(rng.int(0, 9));
  const needle = enc.encode(`${KEY_PHRASE}${key}.\n`);
  const hayLen = context - needle.length;

  // A haystack window without "key is" (retry at another seeded offset).
  let hay: Uint8Array | undefined;
  for (let attempt = 0; attempt < 1000 && !hay; attempt++) {
    const raw = rng.int(0, text.length - hayLen - 1);
    const start = nextLineStart(text, raw, text.length - hayLen);
    const w = text.subarray(start, start + hayLen);
    if (!containsKeyPhrase(w)) hay = w;
  }
  if (!hay) throw rangeError('text', 'held-out text with windows free of "key is"', 'text where every window has one');

  // Insert at a line start at the seeded depth (the first line start at or after it).
  const target = Math.floor(rng.range(depth) * hayLen);
  let at = target;
  while (at < hayLen && at > 0 && hay[at - 1] !== NEWLINE) at++;
  if (at >= hayLen) at = target; // no line start after it: insert mid-line (the needle still ends with \n)
  const out = new Uint8Array(context);
  out.set(hay.subarray(0, at), 0);
  out.set(needle, at);
  out.set(hay.subarray(at), at + needle.length);
  return {
    context: out,
    question: enc.encode(`\n${KEY_PHRASE}${key[0]}`),
    answer: enc.encode(key.slice(1)),
    key,
    needleStart: at,
    needleEnd: at + needle.length,
  };
}
