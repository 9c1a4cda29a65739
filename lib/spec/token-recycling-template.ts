/**
 * Token Recycling's static draft tree. A template lists its nodes (root
 * excluded) as paths of ranks: [a, b] is the rank-b candidate of the rank-a
 * candidate of the root. TOKEN_RECYCLING_TEMPLATE is the "2.2.2" tree of the
 * official code (Luowaterbi/TokenRecycling, model/recycling/tree_template_.py,
 * the default of evaluation/inference_recycling.py): 80 nodes over 6 levels
 * of 8 / 21 / 25 / 15 / 8 / 3 nodes, listed level by level.
 */
import { rangeError, typeError } from '../errors.js';

/** The official "2.2.2" template, in the official order (breadth-first). */
export const TOKEN_RECYCLING_TEMPLATE: readonly (readonly number[])[] = Object.freeze(
  [
    // level 1: the whole root row
    [0], [1], [2], [3], [4], [5], [6], [7],
    // level 2
    [0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1], [2, 2],
    [3, 0], [3, 1], [4, 0], [5, 0], [6, 0], [7, 0],
    // level 3
    [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4], [0, 0, 5], [0, 0, 6], [0, 0, 7], [0, 1, 0], [0, 1, 1], [0, 1, 2],
    [0, 2, 0], [0, 2, 1], [0, 3, 0], [0, 4, 0], [0, 5, 0], [0, 6, 0], [0, 7, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0], [2, 0, 0],
    [3, 0, 0], [4, 0, 0], [5, 0, 0],
    // level 4
    [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 4], [0, 0, 1, 0], [0, 0, 1, 1], [0, 0, 2, 0], [0, 0, 3, 0],
    [0, 0, 4, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
    // level 5
    [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2], [0, 0, 0, 1, 0], [0, 0, 0, 2, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0],
    [1, 0, 0, 0, 0],
    // level 6
    [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0],
  ].map((p) => Object.freeze(p)),
);

/** A template as the native walk takes it: node 0 = root; parents/ranks/depths int32 [nodes] (parents[0] = ranks[0] = -1, depths[0] = 0). */
export interface CompiledTemplate {
  parents: Int32Array;
  ranks: Int32Array;
  depths: Int32Array;
}

/** The most template nodes (root excluded) accepted. */
export const MAX_TEMPLATE_NODES = 4095;

/**
 * Paths -> (parent, rank) per node. Every path's prefix (the path without
 * its last rank) must be an earlier path or empty, ranks integers in
 * [0, topK), no path twice.
 */
export function compileTemplate(paths: unknown, topK: number, arg = 'template'): CompiledTemplate {
  if (!Array.isArray(paths)) throw typeError(arg, 'an array of rank paths such as [[0], [1], [0, 0]]', paths);
  if (paths.length > MAX_TEMPLATE_NODES) throw rangeError(arg, `at most ${MAX_TEMPLATE_NODES} nodes`, paths);
  const n = paths.length + 1;
  const out: CompiledTemplate = { parents: new Int32Array(n), ranks: new Int32Array(n), depths: new Int32Array(n) };
  out.parents[0] = -1;
  out.ranks[0] = -1;
  const index = new Map<string, number>([['', 0]]);
  paths.forEach((path: unknown, i: number) => {
    const at = `${arg}[${i}]`;
    if (!Array.isArray(path) || path.length < 1) throw typeError(at, 'a non-empty array of ranks', path);
    path.forEach((r: unknown, j: number) => {
      if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= topK) throw rangeError(`${at}[${j}]`, `a rank in [0, ${topK})`, r);
    });
    const key = path.join(',');
    if (index.has(key)) throw rangeError(at, 'a path listed once', `[${key}] again`);
    const parent = index.get(path.slice(0, -1).join(','));
    if (parent === undefined) throw rangeError(at, `a path whose parent [${path.slice(0, -1).join(', ')}] is listed before it`, `[${key}]`);
    index.set(key, i + 1);
    out.parents[i + 1] = parent;
    out.ranks[i + 1] = path[path.length - 1] as number;
    out.depths[i + 1] = path.length;
  });
  return out;
}
