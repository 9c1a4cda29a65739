/**
 * vocabFromTokenizerJson: a TokenVocab from an HF tokenizer.json whose model
 * is a byte-level BPE: model BPE (no dropout, no byte fallback, no subword
 * prefix/suffix), pre_tokenizer = ByteLevel or a Sequence of Split(regex,
 * "Isolated") ending in ByteLevel(use_regex false), normalizer none / NFC.
 * That covers Llama 3, Qwen 2/3, DeepSeek-V3 and GPT-2-style files.
 *
 * Semantics follow huggingface/tokenizers: tokenizers/src/models/bpe/model.rs
 * (merges map: (left id, right id) -> (merge index, merged id), a later
 * duplicate replacing an earlier one; ignore_merges), bpe/word.rs (merge_all:
 * lowest merge index first, leftmost on ties), pre_tokenizers/split.rs
 * (Isolated: matches and the text between them are pieces, each Split of a
 * Sequence works inside the previous pieces), pre_tokenizers/byte_level.rs.
 * Added tokens (special or not) are never produced by encodeBytes: they are
 * this vocabulary's special tokens (HF splits their literal text out of the
 * input first; we encode it as ordinary text).
 */
import { readFileSync } from 'node:fs';
import { TokenpressError, typeError } from '../errors.js';
import { ByteBpeVocab } from './byte-bpe-vocab.js';
import { byteLevelDecode } from './byte-level.js';
import { rustRegexToJs } from './rust-regex.js';
import { checkOptions } from '../validate.js';

/** GPT-2's pattern, which ByteLevel(use_regex: true) applies (byte_level.rs). */
const GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

type Json = Record<string, unknown>;

function bad(name: string, what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `${name}: ${what}`);
}
function unsupported(name: string, what: string): TokenpressError {
  return new TokenpressError('ERR_UNSUPPORTED', `${name}: ${what} is not supported (byte-level BPE tokenizer.json files only)`);
}
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|\/-]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/** The JS patterns of the pre-tokenizer, applied in sequence. */
function pretokenizerPatterns(name: string, pre: unknown): string[] {
  if (!isObject(pre)) throw unsupported(name, `pre_tokenizer ${JSON.stringify(pre)}`);
  const steps = pre.type === 'Sequence' ? pre.pretokenizers : [pre];
  if (!Array.isArray(steps) || steps.length === 0) throw bad(name, 'pre_tokenizer.pretokenizers must be a non-empty array');
  const patterns: string[] = [];
  let byteLevel = false;
  for (const step of steps) {
    if (!isObject(step)) throw bad(name, 'a pre-tokenizer step is not an object');
    if (byteLevel) throw unsupported(name, `a pre-tokenizer after ByteLevel (${String(step.type)})`);
    if (step.type === 'Split') {
      if (step.behavior !== 'Isolated' || step.invert === true) throw unsupported(name, `Split with behavior ${String(step.behavior)}${step.invert ? ' inverted' : ''}`);
      const p = step.pattern;
      if (isObject(p) && typeof p.Regex === 'string') patterns.push(rustRegexToJs(p.Regex));
      else if (isObject(p) && typeof p.String === 'string') patterns.push(escapeLiteral(p.String));
      else throw bad(name, 'Split.pattern must be {"Regex": ...} or {"String": ...}');
    } else if (step.type === 'ByteLevel') {
      if (step.add_prefix_space === true) throw unsupported(name, 'ByteLevel with add_prefix_space');
      if (step.use_regex !== false) patterns.push(rustRegexToJs(GPT2_PATTERN));
      byteLevel = true;
    } else throw unsupported(name, `pre-tokenizer ${String(step.type)}`);
  }
  if (!byteLevel) throw unsupported(name, 'a pre-tokenizer without ByteLevel');
  return patterns;
}

function normalizerOf(name: string, norm: unknown): 'NFC' | undefined {
  if (norm === null || norm === undefined) return undefined;
  if (!isObject(norm)) throw bad(name, 'normalizer is not an object');
  if (norm.type === 'NFC') return 'NFC';
  if (norm.type === 'Sequence' && Array.isArray(norm.normalizers)) {
    const inner = norm.normalizers.map((n) => normalizerOf(name, n)).filter((n) => n !== undefined);
    return inner.length > 0 ? 'NFC' : undefined;
  }
  throw unsupported(name, `normalizer ${String(norm.type)}`);
}

/**
 * A TokenVocab from a tokenizer.json (its parsed object, or a file path).
 * `name` defaults to the path (or 'tokenizer.json').
 * Throws TokenpressError ERR_BAD_FILE for a malformed file, ERR_UNSUPPORTED
 * for a model or pre-tokenizer it does not implement.
 */
export function vocabFromTokenizerJson(json: object | string, name?: string, options?: { engine?: 'native' | 'ts' }): ByteBpeVocab {
  if (name !== undefined && typeof name !== 'string') throw typeError('name', 'a string', name);
  const opts = checkOptions('options', options, ['engine']);
  const engine = opts.engine ?? 'native';
  if (engine !== 'native' && engine !== 'ts') throw typeError('options.engine', '"native" or "ts"', engine);
  let obj: unknown = json;
  let label = name ?? 'tokenizer.json';
  if (typeof json === 'string') {
    label = name ?? json;
    let text: string;
    try {
      text = readFileSync(json, 'utf8');
    } catch (e) {
      throw new TokenpressError('ERR_BAD_FILE', `${label}: cannot read (${(e as Error).message})`, { cause: e });
    }
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new TokenpressError('ERR_BAD_FILE', `${label}: not JSON (${(e as Error).message})`, { cause: e });
    }
  } else if (!isObject(json)) throw typeError('json', 'a parsed tokenizer.json object or a file path', json);
  if (!isObject(obj)) throw bad(label, 'not a JSON object');
  const model = obj.model;
  if (!isObject(model)) throw bad(label, 'no "model" object');
  if (model.type !== undefined && model.type !== 'BPE') throw unsupported(label, `model ${String(model.type)}`);
  if (model.dropout !== null && model.dropout !== undefined) throw unsupported(label, 'BPE dropout');
  if (model.byte_fallback === true) throw unsupported(label, 'BPE byte_fallback');
  if (model.continuing_subword_prefix || model.end_of_word_suffix) throw unsupported(label, 'a subword prefix/suffix');
  const vocab = model.vocab;
  if (!isObject(vocab)) throw bad(label, 'model.vocab must be an object');
  const merges = model.merges;
  if (!Array.isArray(merges)) throw bad(label, 'model.merges must be an array');

  const patterns = pretokenizerPatterns(label, obj.pre_tokenizer);
  const normalize = normalizerOf(label, obj.normalizer);

  // added tokens: special to us whatever their flag
  const specials: [string, number][] = [];
  const added = new Set<number>();
  const addedList = obj.added_tokens ?? [];
  if (!Array.isArray(addedList)) throw bad(label, 'added_tokens must be an array');
  for (const t of addedList) {
    if (!isObject(t) || typeof t.content !== 'string' || !Number.isSafeInteger(t.id) || (t.id as number) < 0) throw bad(label, 'an added token without content / id');
    specials.push([t.content, t.id as number]);
    added.add(t.id as number);
  }

  const entries = Object.entries(vocab);
  let maxId = -1;
  for (const [, id] of entries) if (typeof id === 'number' && id > maxId) maxId = id;
  const tokens: (Uint8Array | undefined)[] = new Array(Math.max(0, Math.min(maxId + 1, 1 << 26)));
  for (const [tok, id] of entries) {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) > 1 << 26) throw bad(label, `vocab id of ${JSON.stringify(tok)} is ${String(id)}`);
    if (added.has(id as number)) continue;
    const b = byteLevelDecode(tok);
    if (b === undefined || b.length === 0) continue; // not a byte string: no merge can produce it
    if (tokens[id as number] !== undefined) throw bad(label, `id ${String(id)} is used twice`);
    tokens[id as number] = b;
  }
  // merge names -> ids through the parsed vocab object itself (a hash already); added tokens never merge
  const idOf = (tok: unknown): number | undefined => {
    if (typeof tok !== 'string' || !Object.hasOwn(vocab, tok)) return undefined;
    const id = vocab[tok] as number;
    return added.has(id) ? undefined : id;
  };
  const pairs = new Int32Array(2 * merges.length);
  merges.forEach((m, r) => {
    let a: unknown;
    let b: unknown;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) throw bad(label, `merge ${r} ${JSON.stringify(m)} is not "left right"`);
      a = m.slice(0, sp);
      b = m.slice(sp + 1);
    } else if (Array.isArray(m) && m.length === 2) [a, b] = m;
    else throw bad(label, `merge ${r} is neither "left right" nor [left, right]`);
    const ia = idOf(a);
    const ib = idOf(b);
    if (ia === undefined || ib === undefined) throw bad(label, `merge ${r} names a token that is not in the vocabulary`);
    pairs[2 * r] = ia;
    pairs[2 * r + 1] = ib;
  });
  return new ByteBpeVocab({
    name: label, tokens, specials, patterns, merges: pairs, ignoreMerges: model.ignore_merges === true, normalize, engine,
  });
}
