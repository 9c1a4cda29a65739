/**
 * What a KvCache with device 'cuda' accepts (native/cuda/cuda_kv_cache.h).
 * The rules are checked here whether or not a device is present, so code
 * written against a GPU cache fails the same way on a machine without one
 * (where the cache silently runs on the CPU).
 */
import { TokenpressError } from '../errors.js';
import type { NativeKvCompressParams } from '../native.js';
import type { ResolvedCompression } from './compression.js';

/** Scorers with device kernels. */
export const DEVICE_SCORERS: readonly string[] = ['streamingllm', 'knorm', 'h2o', 'tova', 'snapkv'];
/** Cache dtypes and head sizes the device stores. */
export const DEVICE_DTYPES: readonly string[] = ['f16', 'bf16', 'int8', 'int4'];
export const DEVICE_HEAD_DIMS: readonly number[] = [64, 128, 256];

export function unsupported(what: string): TokenpressError {
  return new TokenpressError('ERR_UNSUPPORTED', `KvCache on cuda: ${what}; use a CPU cache (device: 'cpu') for it`);
}

export function checkDeviceConfig(dtype: string, headDim: number): void {
  if (!DEVICE_DTYPES.includes(dtype)) throw unsupported(`dtype '${dtype}' is not stored on the device (expected ${DEVICE_DTYPES.join(' or ')})`);
  if (!DEVICE_HEAD_DIMS.includes(headDim)) throw unsupported(`headDim ${headDim} is not supported on the device (expected ${DEVICE_HEAD_DIMS.join(', ')})`);
}

export function checkDeviceCompression(p: ResolvedCompression | NativeKvCompressParams): void {
  if (p.allocation === 3) return;  // razor: positions only, merging on the device
  if (!DEVICE_SCORERS.includes(p.policy)) throw unsupported(`policy "${p.policy}" runs on the CPU only (the device scores ${DEVICE_SCORERS.join(', ')})`);
  if ('drafts' in p && p.drafts !== undefined) throw unsupported('draft queries (speckv) run on the CPU only');
}

/** Sparse methods with device kernels (native/cuda/cuda_kv_sparse.cu), on every device cache dtype. */
export const DEVICE_SPARSE_METHODS: readonly string[] = ['quest'];

/** softcap: refused; sparse (the method, if any): Quest runs on the device, TidalDecode and block retrieval are refused. */
export function checkDeviceAttend(softcap: number, sparseMethod?: string): void {
  if (softcap !== 0) throw unsupported('softcap is not supported on the device');
  if (sparseMethod !== undefined && !DEVICE_SPARSE_METHODS.includes(sparseMethod)) {
    throw unsupported(`sparse.method '${sparseMethod}' runs on CPU caches only (the device runs ${DEVICE_SPARSE_METHODS.map((m) => `'${m}'`).join(', ')})`);
  }
}
