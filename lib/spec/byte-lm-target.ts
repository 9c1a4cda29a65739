/**
 * The built-in byte model (lib/model/byte-lm.ts) as a speculative decoding
 * target: the prompt is prefilled in chunks, each tree runs in one forward
 * over the session's KvCache with the tree mask (LmSession.forwardTree), and
 * the cache keeps only the accepted path (LmSession.commitTree).
 */
import type { LmSession } from '../model/byte-lm.js';
import type { DraftTree } from './drafter.js';
import type { SpecTarget } from './decoder.js';

/** Bytes per prefill forward. */
const PREFILL_CHUNK = 512;

export function byteLmTarget(session: LmSession): SpecTarget {
  return {
    vocab: 256,
    async prefill(tokens: Int32Array): Promise<void> {
      for (let i = 0; i < tokens.length; i += PREFILL_CHUNK) {
        await session.forward(Uint8Array.from(tokens.subarray(i, i + PREFILL_CHUNK)));
      }
    },
    // forwardTree places the nodes at session.position + depth: the decoder's positions.
    run(tree: DraftTree): Promise<Float32Array> {
      return session.forwardTree(Uint8Array.from(tree.tokens), tree.parents);
    },
    commit(acceptedNodes: Int32Array): void {
      session.commitTree(acceptedNodes);
    },
  };
}
