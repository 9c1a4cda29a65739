/**
 * Loads onnxruntime-node on demand. tokenpress does not depend on it (it is a
 * devDependency and an optional peer): the model runner, `tokenpress
 * generate`, `bench lm` and `eval kv --model` need it, everything else does
 * not. bench/attention.ts loads it through here too.
 */
import { createRequire } from 'node:module';
import { TokenpressError } from '../errors.js';

/** The part of onnxruntime-node's API the model runner uses. */
export interface OrtTensor {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

export type OrtTensorType = 'float32' | 'float16' | 'int64' | 'int32';

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtModule {
  InferenceSession: { create(path: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: OrtTensorType, data: Float32Array | Uint16Array | BigInt64Array | Int32Array, dims: readonly number[]) => OrtTensor;
}

/**
 * onnxruntime-node's native session object (dist/binding.js in 1.x): the
 * synchronous run that the public InferenceSession.run calls inside a
 * setImmediate, after re-checking its arguments, and whose outputs it
 * re-wraps. The model runner calls it directly when it is there: a decode
 * step runs L + 1 small graphs, and the public path's hop and wrapping cost
 * about 20 us per run (docs/model.md).
 */
export interface OrtDirectSession {
  loadModel(path: string, options: Record<string, unknown>): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, OrtTensor>;
  dispose(): void;
  readonly inputMetadata: readonly { name: string }[];
  readonly outputMetadata: readonly { name: string }[];
}

export interface OrtLoaded {
  ort: OrtModule;
  version: string;
  /** Creates a native session for a synchronous run; undefined when this onnxruntime-node keeps its binding elsewhere. */
  direct: ((path: string, options: Record<string, unknown>) => OrtDirectSession) | undefined;
}

let cached: OrtLoaded | undefined;

function loadDirect(require: NodeJS.Require, name: string): OrtLoaded['direct'] {
  try {
    const b = require(`${name}/dist/binding.js`) as {
      binding?: { InferenceSession?: new () => OrtDirectSession };
      initOrt?: () => void;
    };
    const Session = b.binding?.InferenceSession;
    const init = b.initOrt;
    if (typeof Session !== 'function' || typeof init !== 'function') return undefined;
    const proto = Session.prototype as Partial<OrtDirectSession>;
    if (typeof proto.loadModel !== 'function' || typeof proto.run !== 'function' || typeof proto.dispose !== 'function') return undefined;
    return (path, options) => {
      init();
      const s = new Session();
      s.loadModel(path, options);
      return s;
    };
  } catch {
    return undefined;
  }
}

/** onnxruntime-node and its version; throws ERR_ORT_MISSING when it is not installed. */
export async function loadOrt(): Promise<OrtLoaded> {
  if (cached) return cached;
  const name = 'onnxruntime-node'; // a variable: the TypeScript build must not need the package
  let mod: { default?: OrtModule } & Partial<OrtModule>;
  try {
    mod = (await import(name)) as typeof mod;
  } catch (e) {
    throw new TokenpressError(
      'ERR_ORT_MISSING',
      `the model runner needs onnxruntime-node (npm install onnxruntime-node@1.30.0): ${(e as Error).message}`,
      { cause: e },
    );
  }
  const ort = (mod.InferenceSession ? mod : mod.default) as OrtModule | undefined;
  if (!ort?.InferenceSession) throw new TokenpressError('ERR_ORT_MISSING', 'onnxruntime-node loaded but has no InferenceSession');
  const require = createRequire(import.meta.url);
  let version = 'unknown';
  try {
    version = (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    // keep 'unknown'
  }
  cached = { ort, version, direct: loadDirect(require, name) };
  return cached;
}
