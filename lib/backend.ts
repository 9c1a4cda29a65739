/** What is compiled, what the machine has, and the size of the thread pool. */
import { readFileSync } from 'node:fs';
import { rangeError, typeError } from './errors.js';
import { native, type NativeCudaStatus } from './native.js';
import { checkInteger } from './validate.js';

export type Isa = 'scalar' | 'avx2' | 'avx512';
const ISAS: readonly Isa[] = ['scalar', 'avx2', 'avx512'];

export interface BackendInfo {
  /** Package version. */
  version: string;
  /** ISA the kernels use now. */
  isa: Isa;
  /** Best ISA this CPU supports. */
  detectedIsa: Isa;
  /** CPU features seen at run time (avx2, fma, f16c, avx512f, avx512fp16, avx512bf16, avx512vnni, amxTile, ...). */
  features: Record<string, boolean>;
  /** Size of the native thread pool. */
  threads: number;
  /** CUDA backend: compiled in, device count, and why there is no device. */
  cuda: NativeCudaStatus;
}

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    const url = new URL('../../package.json', import.meta.url);
    const fallback = new URL('../package.json', import.meta.url);
    let text: string;
    try {
      text = readFileSync(url, 'utf8');
    } catch {
      text = readFileSync(fallback, 'utf8');
    }
    version = (JSON.parse(text) as { version: string }).version;
  }
  return version;
}

export function backendInfo(): BackendInfo {
  const info = native().backendInfo();
  return { version: packageVersion(), ...info, isa: info.isa as Isa, detectedIsa: info.detectedIsa as Isa };
}

/** Sizes the one persistent native thread pool (the calling thread counts as one). */
export function setThreads(n: number): void {
  checkInteger('n', n, 1, 1024);
  native().setThreads(n);
}

/**
 * Chooses the SIMD level the kernels use, at most the detected one (for
 * testing and comparing code paths). Throws if the CPU lacks it.
 */
export function setIsa(isa: Isa): void {
  if (typeof isa !== 'string') throw typeError('isa', `one of ${ISAS.join(', ')}`, isa);
  if (!ISAS.includes(isa)) throw rangeError('isa', `one of ${ISAS.join(', ')}`, isa);
  if (!native().setIsa(isa)) {
    throw rangeError('isa', `an ISA this CPU supports (up to ${native().backendInfo().detectedIsa})`, isa);
  }
}
