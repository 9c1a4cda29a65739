/**
 * The methods `tokenpress bench sparse` times (bench/sparse.ts), one entry
 * each: what the cache and the stateless API are called with, and the bytes
 * model (what one layer of the step reads). Quest and block retrieval select
 * in every layer; TidalDecode is a schedule over the step's layers
 * (tidalStepLayers).
 */
import {
  blockSelect, blockSummaries, questPageSummaries, questSelect, type Tensor,
} from '../lib/index.js';
import type { ResolvedSparseBenchOptions } from './sparse.js';

/** One sparse method as the bench drives it. */
export interface SparseBenchMethod {
  name: string;
  /** 'layer': every layer selects and gathers (Quest, blocks); 'step': TidalDecode's schedule over the step's layers. */
  kind: 'layer' | 'step';
  /** The summary layout it needs in the cache (methods sharing one are timed together); null: none. */
  layout: string | null;
  /** Tokens a gathered layer attends per KV head for a budget at nKv tokens (the bytes model). */
  selectedPerHead(budget: number, nKv: number): number;
  /** Bytes one layer of the step reads, on average over the modelled step's layers. */
  bytesPerLayer(budget: number, nKv: number, cfg: ResolvedSparseBenchOptions): number;
  /** Of bytesPerLayer, the bytes read as scattered runs of gatherRun tokens (the rest is streamed: summaries, full layers). */
  gatheredBytesPerLayer(budget: number, nKv: number, cfg: ResolvedSparseBenchOptions): number;
  /** Tokens per contiguous run of a gathered read (a page, a block, one row). */
  gatherRun: number;
  /** KvCache.attend's `sparse` option ('step' methods: the timing schedule over the held layers). */
  sparse(budget: number): Record<string, unknown>;
  /** The stateless form, for the breakdown (selection, gathered attention); absent = cache total only. */
  stateless?: {
    prepare(k: Tensor<'f16'>): unknown;
    select(q: Tensor<'f32'>, prepared: unknown, budget: number): Tensor<'i32'>;
  };
}

export const QUEST_PAGE = 16;
const BLOCK_SIZE = 64;

/** Layers of TidalDecode's default schedule for a step of `layers` (the library's defaults: full 0-1, selection at 2, re-selection at 13 when layers > 13). */
export function tidalStepLayers(layers: number): { full: number; select: number; gathered: number } {
  const full = 2;
  const select = 1 + (layers > 13 ? 1 : 0);
  return { full, select, gathered: layers - full - select };
}

/** Pages / blocks of `size` tokens: a layer's selection reads whole ones, the budget in tokens. */
const wholeUnits = (budget: number, nKv: number, size: number) => Math.min(nKv, Math.max(1, Math.floor(budget / size)) * size);

/** The methods measured. */
export const SPARSE_BENCH_METHODS: SparseBenchMethod[] = [
  {
    name: 'quest',
    kind: 'layer',
    layout: `pages of ${QUEST_PAGE}`,
    selectedPerHead: (budget, nKv) => wholeUnits(budget, nKv, QUEST_PAGE),
    // kmin, kmax: 2 f16 rows per page; the selected rows' K + V.
    bytesPerLayer: (budget, nKv, c) => c.kvHeads * c.headDim * 2 * (2 * Math.ceil(nKv / QUEST_PAGE) + 2 * wholeUnits(budget, nKv, QUEST_PAGE)),
    gatheredBytesPerLayer: (budget, nKv, c) => c.kvHeads * c.headDim * 2 * 2 * wholeUnits(budget, nKv, QUEST_PAGE),
    gatherRun: QUEST_PAGE,
    sparse: (budget) => ({ method: 'quest', budget, pageSize: QUEST_PAGE }),
    stateless: {
      prepare: (k) => questPageSummaries(k, { pageSize: QUEST_PAGE }),
      select: (q, prepared, budget) => questSelect(q, prepared as ReturnType<typeof questPageSummaries>, { budget }),
    },
  },
  {
    name: 'blocks',
    kind: 'layer',
    layout: `blocks of ${BLOCK_SIZE}`,
    selectedPerHead: (budget, nKv) => wholeUnits(budget, nKv, BLOCK_SIZE),
    // kmin, kmax f16 and kmean f32 (= 2 f16 rows) per block; the selected rows' K + V.
    bytesPerLayer: (budget, nKv, c) => c.kvHeads * c.headDim * 2 * (4 * Math.ceil(nKv / BLOCK_SIZE) + 2 * wholeUnits(budget, nKv, BLOCK_SIZE)),
    gatheredBytesPerLayer: (budget, nKv, c) => c.kvHeads * c.headDim * 2 * 2 * wholeUnits(budget, nKv, BLOCK_SIZE),
    gatherRun: BLOCK_SIZE,
    sparse: (budget) => ({ method: 'blocks', budget, blockSize: BLOCK_SIZE }),
    stateless: {
      prepare: (k) => blockSummaries(k, { blockSize: BLOCK_SIZE }),
      select: (q, prepared, budget) => blockSelect(q, prepared as ReturnType<typeof blockSummaries>, { budget }),
    },
  },
  {
    name: 'tidal',
    kind: 'step',
    layout: null,
    selectedPerHead: (budget, nKv) => Math.min(nKv, budget),
    // Full and selection layers read every row; gathered layers the kept rows.
    bytesPerLayer: (budget, nKv, c) => {
      const s = tidalStepLayers(c.layers);
      const row = c.kvHeads * c.headDim * 2 * 2;
      return ((s.full + s.select) * nKv * row + s.gathered * Math.min(nKv, budget) * row) / c.layers;
    },
    gatheredBytesPerLayer: (budget, nKv, c) => (tidalStepLayers(c.layers).gathered * Math.min(nKv, budget) * c.kvHeads * c.headDim * 2 * 2) / c.layers,
    gatherRun: 1,
    // Timing schedule over the held layers: selection at held layer 0, the others gathered.
    sparse: (budget) => ({ method: 'tidal', budget, selectLayer: 0, reselectLayers: [] }),
  },
];
