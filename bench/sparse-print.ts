/** The text table of a `tokenpress bench sparse` report (bench/sparse.ts). */
import { GiB, type SparseBenchReport } from './sparse.js';

const f = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));

export function printSparseTable(r: SparseBenchReport): void {
  const c = r.config;
  console.log(`Sparse decode step: ${c.layers} layers x ${c.kvHeads} KV heads x headDim ${c.headDim}, f16, ${c.heads} query heads, nQ 1; ${r.machine.threads} threads (${r.machine.isa})`);
  console.log(`CPU: ${r.machine.model}; read bandwidth (bench/limits.ts): ${f(r.readBandwidthGBs.start)} GB/s at start, ${f(r.readBandwidthGBs.end)} GB/s best incl. the end (percentages use the best)`);
  for (const g of r.gatherBandwidthGBs) console.log(`Gathered-read bandwidth, runs of ${g.runTokens} token(s) = ${g.blockBytes} B at random: ${f(g.start)} GB/s at start, ${f(g.end)} GB/s best (${g.loop})`);
  for (const s of r.sizes) {
    console.log('');
    console.log(`${s.tokens} tokens: ${s.measuredLayers} of ${s.modelledLayers} layers measured (${f((s.measuredLayers * s.layerKvBytes) / GiB, 2)} GiB K + V); summaries ${f(s.summaryBytesPerLayer / 2 ** 20)} MiB/layer = ${f(100 * s.summaryOverKeyBytes, 2)}% of the keys (goal <= ${f(100 * s.summaryGoal, 1)}%)`);
    console.log(`  dense step ${f(s.dense.stepMs)} ms (${f(s.dense.msPerLayer, 3)} ms/layer), ${f(s.dense.gbPerS)} GB/s = ${f(s.dense.pctReadBw, 0)}% of read BW; bandwidth-ideal ${f(s.dense.idealStepMs)} ms`);
    console.log('  cache: step ms vs the dense step ms of the same sub-phase (interleaved); stateless: the breakdown on per-layer arrays');
    console.log('  method   budget  sel/head  step ms  dense ms  speedup  ideal  GB/s  %BW  | stateless: select ms  gathered ms  total ms  dense ms  speedup  select share | build ms/layer');
    for (const m of s.methods) {
      const st = m.stateless;
      console.log(
        `  ${m.method.padEnd(8)} ${String(m.budget).padStart(6)}  ${String(m.selectedPerHead).padStart(8)}  ${f(m.cache.stepMs, 2).padStart(7)}  ${f(m.cache.denseMsPerLayer * s.modelledLayers, 2).padStart(8)}  ${f(m.cache.speedup, 2).padStart(7)}  ${f(m.idealSpeedup, 1).padStart(5)}  ${f(m.cache.gbPerS).padStart(4)}  ${f(m.cache.pctReadBw, 0).padStart(3)}  | ` +
          `${f(st?.selectStepMs, 2).padStart(20)}  ${f(st?.gatheredStepMs, 2).padStart(11)}  ${f(st?.totalStepMs, 2).padStart(8)}  ${f(st?.denseStepMs, 2).padStart(8)}  ${f(st?.speedup, 2).padStart(7)}  ${st ? `${f(100 * st.selectShare, 0)}%`.padStart(12) : '-'.padStart(12)} | ${f(m.summaryBuildMsPerLayer ?? undefined, 2)}`,
      );
      const l = m.limit;
      console.log(`           machine limit (streamed at read BW + gathered runs of ${l.gatherRun} at gathered-read BW): step ${f(l.stepMs, 2)} ms; measured = ${f(l.pctOfLimit, 0)}% of it; limit speedup ${f(l.limitSpeedup, 2)}x`);
      const sc = m.schedule;
      if (sc) {
        console.log(`           step = ${sc.full} full x ${f(sc.denseMsPerCall, 3)} + ${sc.select} selection x ${f(sc.selectMsPerCall, 3)} + ${sc.gathered} gathered x ${f(sc.gatheredMsPerCall, 3)} ms (per-call medians, cache)`);
      }
    }
    for (const n of s.notes) console.log(`  note: ${n}`);
  }
  const u = r.upkeep;
  console.log('');
  console.log(`Summary upkeep on append (${u.tokens}-token f16 cache, ${c.kvHeads} KV heads): single token ${f(u.single.withMs * 1e3, 2)} us with vs ${f(u.single.withoutMs * 1e3, 2)} us without (${f(100 * u.single.overhead, 1)}%); ${u.chunk.tokens} tokens ${f(u.chunk.withMs, 3)} ms vs ${f(u.chunk.withoutMs, 3)} ms (${f(100 * u.chunk.overhead, 1)}%); goal <= ${f(100 * u.goal, 0)}%`);
  for (const n of r.notes) console.log(`note: ${n}`);
}
