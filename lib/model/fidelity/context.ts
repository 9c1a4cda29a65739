/**
 * One prefill, many compressions: the context is run through the model once
 * (tokenpress attention over an f16 KvCache, runner.ts: LmSession's loop), its keys,
 * values and last `window` queries per layer are captured, and every policy x
 * budget then starts from a fresh session rebuilt from the capture:
 *
 *   k[l], v[l]   f32 [nKvHeads, C, headDim]   post-RoPE, what the cache received
 *   window[l]    f32 [nHeads, W, headDim]     the context's last W queries (W = min(window, C))
 *
 * restoreSession appends k, v to a new cache of the requested dtype, gives
 * it the window queries through attend() (the cache remembers them as its
 * observation window, as it would have after the prefill) and starts the
 * session at position C, so RoPE positions continue. The rebuilt f16
 * cache holds the same rows as the prefill's own cache (same f32 -> f16
 * conversion), so the full-cache continuation equals the one the prefill
 * session would compute. An int8 / int4 cache quantizes the same rows
 * (the context was prefilled at f16, as kvpress's QuantizedCache does).
 */
import type { RunnerSession, StageRunner } from './runner.js';
import type { KvCacheDtype } from '../../kv/cache.js';
import { rangeError } from '../../errors.js';

export interface CapturedContext {
  length: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  k: Float32Array[];
  v: Float32Array[];
  window: Float32Array[];
  windowRows: number;
  /** Cache window (queries remembered) the restored sessions get. */
  cacheWindow: number;
  /** f32 [C, 256] logits of the prefill (row t: the byte after context byte t). */
  logits: Float32Array;
}

/** Copies the last `w` rows of every head of x [heads, T, headDim]. */
function lastRows(x: Float32Array, heads: number, T: number, headDim: number, w: number): Float32Array {
  const out = new Float32Array(heads * w * headDim);
  for (let h = 0; h < heads; h++) out.set(x.subarray((h * T + T - w) * headDim, (h * T + T) * headDim), h * w * headDim);
  return out;
}

/** Prefills `bytes` (C >= 1) and captures what restoreSession needs. */
export async function captureContext(runner: StageRunner, bytes: Uint8Array, cacheWindow = 32): Promise<CapturedContext> {
  if (bytes.length < 1) throw rangeError('bytes.length', 'at least 1 context byte', bytes.length);
  const { nLayers, nHeads, nKvHeads, headDim } = runner.model.config;
  const T = bytes.length;
  const w = Math.min(cacheWindow, T);
  const k: Float32Array[] = [];
  const v: Float32Array[] = [];
  const window: Float32Array[] = [];
  const session = runner.session({ dtype: 'f16', window: cacheWindow });
  const logits = await session.forward(bytes, {
    onLayer: (a) => {
      k[a.layer] = a.k.slice();
      v[a.layer] = a.v.slice();
      window[a.layer] = lastRows(a.q, nHeads, T, headDim, w);
    },
  });
  return { length: T, nLayers, nHeads, nKvHeads, headDim, k, v, window, windowRows: w, cacheWindow, logits: logits.slice() };
}

/** A fresh session whose cache holds the captured context (see the module comment). */
export function restoreSession(runner: StageRunner, c: CapturedContext, dtype: KvCacheDtype = 'f16'): RunnerSession {
  const s = runner.session({ dtype, window: c.cacheWindow }, c.length);
  for (let l = 0; l < c.nLayers; l++) {
    s.cache.append(
      l,
      { dtype: 'f32', shape: [c.nKvHeads, c.length, c.headDim], data: c.k[l]! },
      { dtype: 'f32', shape: [c.nKvHeads, c.length, c.headDim], data: c.v[l]! },
    );
    s.cache.attend(l, { dtype: 'f32', shape: [c.nHeads, c.windowRows, c.headDim], data: c.window[l]! });
  }
  return s;
}

/** Total rows the cache holds now, over layers and KV heads. */
export function cachedRows(s: RunnerSession): number {
  const lengths = s.cache.lengths().data;
  let n = 0;
  for (const x of lengths) n += x;
  return n;
}
