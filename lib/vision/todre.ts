// ToDRE: diversity first, task relevance second (issue 19). No official
// code was found (research notes, /work/shared/research/anchors.md C6: the
// paper only). What we build, and say so in docs/vision-select.md:
//  stage 1 (after the vision encoder): greedy k-center (max-min) diversity,
//    the paper's v1 and DivPrune's rule (native divprune), keeping 10%;
//  stage 2 (inside the LM, at a relevance layer): FastV-style ranking of the
//    surviving visual tokens by the head-averaged attention of the last text
//    token (native fastv rank), and a layer after which every visual token
//    is dropped. Both are expressed as the key positions a layer attends:
//    an index list that attention()'s `indices` option (and a cache export)
//    accepts, so nothing in the KV cache is restructured.
import { rangeError, typeError } from '../errors.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { checkInteger, checkOptions } from '../validate.js';
import { divPrune, divPruneAsync } from './divprune.js';
import { fastvSelect, type FastvSelection } from './fastv.js';
import type { TokensLike } from './select-util.js';
import type { KeepResult } from './types.js';

export const TODRE_DEFAULTS = { keepRatio: 0.1, relevanceR: 0.5 } as const;

/** Stage 1: greedy max-min diversity (k-center) keeping `keepRatio` (default 0.1; round(ratio * n)). */
export function todreDiversity(tokens: TokensLike, options: { keepRatio?: number; keep?: number } = {}): KeepResult {
  const o = checkOptions('options', options ?? {}, ['keepRatio', 'keep']);
  return divPrune(tokens, { keepRatio: (o.keepRatio as number | undefined) ?? TODRE_DEFAULTS.keepRatio, ...(o.keep === undefined ? {} : { keep: o.keep as number }) });
}

/** {@link todreDiversity} off the event loop. */
export async function todreDiversityAsync(tokens: TokensLike, options: { keepRatio?: number; keep?: number } = {}): Promise<KeepResult> {
  const o = checkOptions('options', options ?? {}, ['keepRatio', 'keep']);
  return divPruneAsync(tokens, { keepRatio: (o.keepRatio as number | undefined) ?? TODRE_DEFAULTS.keepRatio, ...(o.keep === undefined ? {} : { keep: o.keep as number }) });
}

/**
 * Stage 2 ranking at the relevance layer: the attention probabilities of
 * that layer (f32 [heads, nk] rows of the last text token, or [heads, nq, nk]),
 * the visual span, and the share dropped `r` (default 0.5).
 */
export function todreRelevance(attention: TensorLike<'f32'>, options: { imageStart: number; imageLength: number; r?: number }): FastvSelection {
  const o = checkOptions('options', options, ['imageStart', 'imageLength', 'r']);
  if (o.imageStart === undefined || o.imageLength === undefined) throw typeError('options', '{ imageStart, imageLength, r? }', options);
  return fastvSelect(attention, { imageStart: o.imageStart as number, imageLength: o.imageLength as number, r: (o.r as number | undefined) ?? TODRE_DEFAULTS.relevanceR });
}

export interface TodreSchedule {
  /** Sequence length (keys in the cache). */
  seqLen: number;
  /** The visual span [imageStart, imageStart + imageLength). */
  imageStart: number;
  imageLength: number;
  /** Visual positions kept from the relevance layer on (stage 2's imageKeep, absolute, ascending). */
  imageKeep: Int32Array;
  /** Layers < relevanceLayer attend every key. */
  relevanceLayer: number;
  /** Layers >= dropLayer attend no visual key at all. */
  dropLayer: number;
}

/**
 * The key positions layer `layer` attends under a ToDRE schedule, ascending:
 * all of them before the relevance layer, text + kept visual tokens up to
 * the drop layer, text only from it on.
 */
export function todreAttendPositions(schedule: TodreSchedule, layer: number): Int32Array {
  const s = checkOptions('schedule', schedule, ['seqLen', 'imageStart', 'imageLength', 'imageKeep', 'relevanceLayer', 'dropLayer']);
  const seqLen = checkInteger('schedule.seqLen', s.seqLen, 0);
  const start = checkInteger('schedule.imageStart', s.imageStart, 0, seqLen);
  const len = checkInteger('schedule.imageLength', s.imageLength, 0, seqLen - start);
  const rel = checkInteger('schedule.relevanceLayer', s.relevanceLayer, 0);
  const drop = checkInteger('schedule.dropLayer', s.dropLayer, rel);
  const l = checkInteger('layer', layer, 0);
  const keep = s.imageKeep;
  if (!(keep instanceof Int32Array)) throw typeError('schedule.imageKeep', 'an Int32Array of visual positions', keep);
  for (let i = 0; i < keep.length; i++) {
    const p = keep[i]!;
    if (p < start || p >= start + len || (i > 0 && p <= keep[i - 1]!)) {
      throw rangeError(`schedule.imageKeep[${i}]`, `ascending positions in [${start}, ${start + len})`, p);
    }
  }
  if (l < rel) return Int32Array.from({ length: seqLen }, (_, i) => i);
  const visual = l < drop ? keep : new Int32Array(0);
  const out = new Int32Array(seqLen - len + visual.length);
  let w = 0;
  for (let i = 0; i < start; i++) out[w++] = i;
  for (let i = 0; i < visual.length; i++) out[w++] = visual[i]!;
  for (let i = start + len; i < seqLen; i++) out[w++] = i;
  return out;
}

/** The same as attention()'s `indices` option: i32 [nKvHeads, nSel], one row per KV head. */
export function todreAttendIndices(schedule: TodreSchedule, layer: number, nKvHeads: number): Tensor<'i32'> {
  const h = checkInteger('nKvHeads', nKvHeads, 1);
  const pos = todreAttendPositions(schedule, layer);
  const data = new Int32Array(h * pos.length);
  for (let i = 0; i < h; i++) data.set(pos, i * pos.length);
  return { dtype: 'i32', shape: [h, pos.length], data };
}
