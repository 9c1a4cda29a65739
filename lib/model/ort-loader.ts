/**
 * Loads onnxruntime-node on demand. tokenpress does not depend on it (it is a
 * devDependency and an optional peer): the model runner, `tokenpress
 * generate` and `eval kv --model` need it, everything else does not.
 */
import { createRequire } from 'node:module';
import { TokenpressError } from '../errors.js';

/** The part of onnxruntime-node's API the model runner uses. */
export interface OrtTensor {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtModule {
  InferenceSession: { create(path: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32' | 'int64' | 'int32', data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]) => OrtTensor;
}

let cached: { ort: OrtModule; version: string } | undefined;

/** onnxruntime-node and its version; throws ERR_ORT_MISSING when it is not installed. */
export async function loadOrt(): Promise<{ ort: OrtModule; version: string }> {
  if (cached) return cached;
  const name = 'onnxruntime-node'; // a variable: the TypeScript build must not need the package
  let mod: { default?: OrtModule } & Partial<OrtModule>;
  try {
    mod = (await import(name)) as typeof mod;
  } catch (e) {
    throw new TokenpressError(
      'ERR_ORT_MISSING',
      `the model runner needs onnxruntime-node (npm install onnxruntime-node@1.30.0): ${(e as Error).message}`,
    );
  }
  const ort = (mod.InferenceSession ? mod : mod.default) as OrtModule | undefined;
  if (!ort?.InferenceSession) throw new TokenpressError('ERR_ORT_MISSING', 'onnxruntime-node loaded but has no InferenceSession');
  let version = 'unknown';
  try {
    version = (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    // keep 'unknown'
  }
  cached = { ort, version };
  return cached;
}
