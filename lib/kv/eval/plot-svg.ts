/**
 * A small hand-written SVG of a KvEvalReport: two panels against the budget
 * (log x axis, one tick per budget), one line and one legend entry per policy.
 *   left   needle retrieval % (trace: needle tokens kept %; without needles:
 *          retained attention mass of the probes %)
 *   right  relative attention output error of the probe queries %
 */
import type { KvEvalReport, KvEvalRow } from './run.js';

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

export const PANEL_W = 340;
export const PANEL_H = 240;
export const MARGIN = { left: 56, top: 40, bottom: 46, gap: 70 };
export const LEGEND_W = 170;

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

interface Panel {
  title: string;
  value: (r: KvEvalRow) => number | null;
  yMax: number;
}

export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const steps = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10];
  return steps.find((s) => s >= v) ?? Math.ceil(v);
}

/**
 * One panel of lines over a log x axis (shared with the vision eval's plot,
 * lib/vision/eval/plot-svg.ts): one tick per x, 5 y grid lines from yMin to
 * yMax labelled by yLabel, one polyline per series (colour i of PALETTE,
 * then the dashes), null / non-finite points left out.
 */
export interface LinePanel {
  title: string;
  xs: readonly number[];
  xTick: (x: number) => string;
  xLabel: string;
  yMin: number;
  yMax: number;
  yLabel: (v: number) => string;
  series: ReadonlyArray<ReadonlyArray<readonly [number, number | null]>>;
}

export function linePanelSvg(p: LinePanel, x0: number): string {
  const lo = Math.log(Math.min(...p.xs));
  const hi = Math.log(Math.max(...p.xs));
  const span = hi > lo ? hi - lo : 1;
  const px = (f: number) => x0 + (hi > lo ? ((Math.log(f) - lo) / span) * PANEL_W : PANEL_W / 2);
  const range = p.yMax - p.yMin;
  const py = (v: number) => MARGIN.top + PANEL_H - ((Math.max(p.yMin, Math.min(v, p.yMax)) - p.yMin) / range) * PANEL_H;
  const out: string[] = [];
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top - 14}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${x0}" y="${MARGIN.top}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#444"/>`);
  for (let i = 0; i <= 4; i++) { // y grid: 5 lines
    const v = p.yMin + (range * i) / 4;
    const y = py(v).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${p.yLabel(v)}</text>`);
  }
  for (const f of p.xs) { // x ticks
    const x = px(f).toFixed(1);
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${MARGIN.top + PANEL_H + 16}" text-anchor="middle">${p.xTick(f)}</text>`);
  }
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top + PANEL_H + 36}" text-anchor="middle">${p.xLabel}</text>`);
  p.series.forEach((series, i) => {
    const pts = series
      .filter((pt): pt is readonly [number, number] => pt[1] !== null && Number.isFinite(pt[1]))
      .map(([f, v]) => `${px(f).toFixed(1)},${py(v).toFixed(1)}`);
    if (pts.length === 0) return;
    const color = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.join(' ')}"/>`);
    for (const pt of pts) {
      const [x, y] = pt.split(',');
      out.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${color}"/>`);
    }
  });
  return out.join('\n');
}

/** The legend entries (series i in PALETTE / DASHES order), top-left at (x, y0). */
export function legendSvg(names: readonly string[], x: number, y0: number): string[] {
  return names.map((name, i) => {
    const y = y0 + i * 20;
    const color = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    return `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
      `<text x="${x + 30}" y="${y}" dominant-baseline="middle">${esc(name)}</text>`;
  });
}

function panelSvg(p: Panel, x0: number, report: KvEvalReport, byPolicy: Map<string, KvEvalRow[]>): string {
  return linePanelSvg({
    title: p.title,
    xs: report.budgets,
    xTick: (f) => `${+(f * 100).toPrecision(3)}%`,
    xLabel: 'budget (fraction of nKv kept, log scale)',
    yMin: 0,
    yMax: p.yMax,
    yLabel: (v) => `${fmt(v * 100)}%`,
    series: [...byPolicy.values()].map((rows) => rows.map((r) => [r.fraction, p.value(r)] as const)),
  }, x0);
}

/** The SVG document (a string) for a report. */
export function renderKvEvalSvg(report: KvEvalReport): string {
  const byPolicy = new Map<string, KvEvalRow[]>();
  for (const r of report.rows) {
    const list = byPolicy.get(r.policy) ?? [];
    list.push(r);
    byPolicy.set(r.policy, list);
  }
  const hasNeedles = report.rows.some((r) => r.needleRate !== null);
  const left: Panel = hasNeedles
    ? { title: report.source.kind === 'trace' ? 'needle tokens kept' : 'needle retrieval (cosine >= 0.9)', value: (r) => r.needleRate, yMax: 1 }
    : { title: 'retained attention mass (probes)', value: (r) => r.massProbes, yMax: 1 };
  const maxErr = Math.max(0, ...report.rows.map((r) => (Number.isFinite(r.errProbes) ? r.errProbes : 0)));
  const right: Panel = { title: 'attention output error (probes)', value: (r) => r.errProbes, yMax: niceMax(maxErr) };
  const width = MARGIN.left + PANEL_W + MARGIN.gap + PANEL_W + 30 + LEGEND_W;
  const height = MARGIN.top + PANEL_H + MARGIN.bottom + 30;
  const legend = legendSvg([...byPolicy.keys()], MARGIN.left + 2 * PANEL_W + MARGIN.gap + 30, MARGIN.top + 10);
  const skipped = report.skipped.map((s) => s.policy);
  const caption = report.source.description + (skipped.length ? `; skipped: ${skipped.join(', ')}` : '');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panelSvg(left, MARGIN.left, report, byPolicy),
    panelSvg(right, MARGIN.left + PANEL_W + MARGIN.gap, report, byPolicy),
    ...legend,
    `<text x="${MARGIN.left}" y="${height - 10}" font-size="10" fill="#555">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
