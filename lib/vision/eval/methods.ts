/**
 * Every method `tokenpress eval vision` and `tokenpress bench vision` run:
 * the floors, then each operator group's adapters
 * (lib/vision/eval/methods-<group>.ts, `export const <group>Methods`).
 * A group joins with one import line and one spread in VISION_EVAL_METHODS:
 *   import { tomeMethods } from './methods-tome.js';
 *   ...floorMethods, ...tomeMethods,
 */
import type { VisionEvalMethod } from '../types.js';
import { clusterMethods } from './methods-cluster.js';
import { floorMethods } from './methods-floor.js';
import { selectMethods } from './methods-select.js';
import { tomeMethods } from './methods-tome.js';

export const VISION_EVAL_METHODS: readonly VisionEvalMethod[] = [
  ...floorMethods,
  ...tomeMethods,
  ...selectMethods,
  ...clusterMethods,
];

/** The names of every method, in table order. */
export function visionMethodNames(): string[] {
  return VISION_EVAL_METHODS.map((m) => m.name);
}

/** The methods named in `names` (all when undefined), in the order given; throws on an unknown name. */
export function selectVisionMethods(names?: readonly string[]): VisionEvalMethod[] {
  if (names === undefined) return [...VISION_EVAL_METHODS];
  return names.map((name) => {
    const m = VISION_EVAL_METHODS.find((x) => x.name === name);
    if (!m) throw new RangeError(`methods: unknown method "${name}"; known: ${visionMethodNames().join(', ')}`);
    return m;
  });
}
