/**
 * The plot of `tokenpress eval vision --svg`: PSNR (dB) against the keep
 * ratio (log x axis), one panel per layout (base 576 tokens, AnyRes 2,880)
 * and fill of the dropped patches (feature-nearest, spatially nearest:
 * reconstruct.ts), one line per method. Drawn with the KV eval's panel code
 * (lib/kv/eval/plot-svg.ts: linePanelSvg, legendSvg).
 */
import { esc, legendSvg, LEGEND_W, linePanelSvg, MARGIN, PANEL_H, PANEL_W } from '../../kv/eval/plot-svg.js';
import type { VisionEvalReport, VisionPsnrRow } from './run.js';

/** The SVG document (a string) for a report. */
export function renderVisionEvalSvg(report: VisionEvalReport): string {
  const methods = [...new Set(report.rows.map((r) => r.method))];
  const finite = report.rows.flatMap((r) => [r.psnrDb, r.psnrSpatialDb]).filter((v) => Number.isFinite(v));
  const yMin = finite.length ? Math.floor(Math.min(...finite) / 5) * 5 : 0;
  let yMax = finite.length ? Math.ceil(Math.max(...finite) / 5) * 5 : 40;
  if (yMax <= yMin) yMax = yMin + 5;
  const layouts = report.layouts.filter((l) => report.rows.some((r) => r.layout === l));
  const kinds = [['feature fill', (r: VisionPsnrRow) => r.psnrDb], ['spatial fill', (r: VisionPsnrRow) => r.psnrSpatialDb]] as const;
  const cells = layouts.flatMap((layout) => kinds.map(([label, value]) => ({ layout, label, value })));
  const panels = cells.map(({ layout, label, value }, i) => linePanelSvg({
    title: `PSNR, ${layout} (${layout === 'base' ? 576 : 2880} tokens), ${label}`,
    xs: report.ratios,
    xTick: (f) => `${+(f * 100).toPrecision(3)}%`,
    xLabel: 'keep ratio (tokens kept / n, log scale)',
    yMin,
    yMax,
    yLabel: (v) => `${+v.toFixed(1)} dB`,
    series: methods.map((m) => report.ratios.map((ratio) => {
      const r = report.rows.find((x) => x.layout === layout && x.method === m && x.ratio === ratio);
      return [ratio, r ? value(r) : null] as const;
    })),
  }, MARGIN.left + i * (PANEL_W + MARGIN.gap)));
  const nPanels = Math.max(1, cells.length);
  const legendX = MARGIN.left + nPanels * PANEL_W + (nPanels - 1) * MARGIN.gap + 30;
  const width = legendX + LEGEND_W;
  const height = Math.max(MARGIN.top + PANEL_H + MARGIN.bottom + 30, MARGIN.top + 20 * methods.length + 30);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels,
    ...legendSvg(methods, legendX, MARGIN.top + 10),
    `<text x="${MARGIN.left}" y="${height - 10}" font-size="10" fill="#555">${esc(report.source.description)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
