// Option reading shared by the sparse methods (quest.ts, blocks.ts, tidal.ts).
import { checkOptions } from '../validate.js';

/**
 * checkOptions, then every known field read once into a plain object: a
 * getter or Proxy trap runs once, so the value validated is the value used
 * (a getter answering 'sum' to the check and something else to the use).
 * `read`: the keys to read (default all), less any read already.
 */
export function readOptions(arg: string, value: unknown, keys: readonly string[], read: readonly string[] = keys): Record<string, unknown> {
  const o = checkOptions(arg, value, keys);
  const r: Record<string, unknown> = {};
  for (const k of read) {
    const v = o[k];
    if (v !== undefined) r[k] = v;
  }
  return r;
}

/** A method's option keys less `method` (resolveSparse read it to dispatch). */
export const withoutMethod = (keys: readonly string[]): string[] => keys.filter((k) => k !== 'method');
