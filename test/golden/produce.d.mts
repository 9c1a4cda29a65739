// Types of produce.mjs for the type-checked tests.
import type * as Lib from '../../lib/index.js';
import type { native as nativeFn } from '../../lib/native.js';
import type { quantizeForRawCoder as quantizeFn } from '../../lib/coding/raw.js';

export interface GoldenApi {
  lib: typeof Lib;
  native: typeof nativeFn;
  quantizeForRawCoder: typeof quantizeFn;
}
export type VectorKind = 'tpm' | 'static' | 'adaptive' | 'raw' | 'equal-info' | 'tpz';
export interface GoldenVector {
  file: string;
  kind: VectorKind;
  /** File under inputs/, or '' for the empty input. */
  input: string;
  options: Record<string, unknown>;
}
export interface ManifestEntry { file: string; kind: VectorKind; input: string; options: Record<string, unknown>; bytes: number; sha256: string }
export interface Manifest { version: number; note: string; vectors: ManifestEntry[] }
export type Stored = ((file: string) => Uint8Array) | null;

export const GOLDEN_DIR: string;
export const MANIFEST: string;
export const VECTORS: readonly GoldenVector[];
export function input(name: string): Uint8Array;
export function sha256(bytes: Uint8Array): string;
export function tokensToBytes(ids: ArrayLike<number>): Uint8Array;
export function bytesToTokens(bytes: Uint8Array): Uint32Array;
export function produce(api: GoldenApi, v: GoldenVector, stored: Stored): Promise<Uint8Array>;
export function decode(api: GoldenApi, v: GoldenVector, bytes: Uint8Array, stored: Stored): Promise<Uint8Array>;
export function expectedDecode(v: GoldenVector, bytes: Uint8Array): Uint8Array;
