// Checks and vector maths for embedding callbacks (the embedding scorer of
// extractive selection and TCRA-LLM's semantic compression): a callback is
// caller code, so its results are checked before use.
import { rangeError, typeError } from '../errors.js';

/** Embeds texts: one vector per text, same order, every vector of the same length. */
export type EmbedFn = (texts: string[]) => Promise<ArrayLike<number>[]> | ArrayLike<number>[];

/** Checks a function argument. */
export function checkEmbed(arg: string, embed: unknown): EmbedFn {
  if (typeof embed !== 'function') throw typeError(arg, 'a function (texts: string[]) => Promise<Float32Array[] | number[][]>', embed);
  return embed as EmbedFn;
}

/**
 * Calls embed(texts) and checks its result: an array of texts.length vectors
 * (Float32Array, Float64Array or number[]), all of length `dim` (or of the
 * first vector's length when dim is undefined, which must be >= 1), every
 * element finite. Returns the vectors and their length.
 */
export async function callEmbed(arg: string, embed: EmbedFn, texts: string[], dim?: number): Promise<{ vectors: ArrayLike<number>[]; dim: number }> {
  const result: unknown = await embed(texts);
  const what = `${arg}() result`;
  if (!Array.isArray(result)) throw typeError(what, `an array of ${texts.length} vectors`, result);
  if (result.length !== texts.length) throw rangeError(what, `an array of ${texts.length} vectors (one per text)`, result);
  let d = dim;
  for (let i = 0; i < result.length; i++) {
    const v: unknown = result[i];
    const isVector = Array.isArray(v) || v instanceof Float32Array || v instanceof Float64Array;
    if (!isVector) throw typeError(`${what}[${i}]`, 'a Float32Array, Float64Array or number[]', v);
    const vec = v as ArrayLike<number>;
    if (d === undefined) {
      if (vec.length === 0) throw rangeError(`${what}[${i}]`, 'a vector of length >= 1', v);
      d = vec.length;
    }
    if (vec.length !== d) throw rangeError(`${what}[${i}]`, `a vector of length ${d} (the embedding size)`, v);
    for (let j = 0; j < d; j++) {
      const x = vec[j];
      if (typeof x !== 'number' || !Number.isFinite(x)) throw rangeError(`${what}[${i}][${j}]`, 'a finite number', x);
    }
  }
  return { vectors: result as ArrayLike<number>[], dim: d ?? 0 };
}

/** Dot product of two vectors of equal length (float64 accumulation). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Euclidean norm. */
export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** Cosine similarity; 0 when either vector is all zeros (it has no direction). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>, normA = norm(a), normB = norm(b)): number {
  if (normA === 0 || normB === 0) return 0;
  return dot(a, b) / (normA * normB);
}
