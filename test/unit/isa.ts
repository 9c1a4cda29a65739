/**
 * Running a check on every SIMD path this CPU has. setIsa() returns nothing
 * and throws when the CPU lacks the level, so a loop must pick the levels
 * from backendInfo().detectedIsa (never from setIsa's return value) and put
 * the previous level back afterwards.
 */
import { backendInfo, setIsa, type Isa } from '../../lib/index.js';

export const ISA_ORDER: readonly Isa[] = ['scalar', 'avx2', 'avx512'];

/** The ISA levels this CPU can run, lowest first (always includes 'scalar'). */
export function isasOnThisCpu(): Isa[] {
  return ISA_ORDER.slice(0, ISA_ORDER.indexOf(backendInfo().detectedIsa) + 1);
}

/** Runs fn with the kernels on `isa`, then restores the previous level. */
export function withIsa<T>(isa: Isa, fn: () => T): T {
  const prev = backendInfo().isa;
  setIsa(isa);
  try {
    if (backendInfo().isa !== isa) throw new Error(`setIsa('${isa}') left the ISA at ${backendInfo().isa}`);
    return fn();
  } finally {
    setIsa(prev);
  }
}

/** Async form of withIsa (the level is process-wide: do not overlap calls). */
export async function withIsaAsync<T>(isa: Isa, fn: () => Promise<T>): Promise<T> {
  const prev = backendInfo().isa;
  setIsa(isa);
  try {
    if (backendInfo().isa !== isa) throw new Error(`setIsa('${isa}') left the ISA at ${backendInfo().isa}`);
    return await fn();
  } finally {
    setIsa(prev);
  }
}
