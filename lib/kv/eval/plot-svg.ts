/**
 * A small hand-written SVG of a KvEvalReport: two panels against the budget
 * (log x axis, one tick per budget), one line and one legend entry per policy.
 *   left   needle retrieval % (trace: needle tokens kept %; without needles:
 *          retained attention mass of the probes %)
 *   right  relative attention output error of the probe queries %
 */
import type { KvEvalReport, KvEvalRow } from './run.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

const PANEL_W = 340;
const PANEL_H = 240;
const MARGIN = { left: 56, top: 40, bottom: 46, gap: 70 };
const LEGEND_W = 170;

function esc(s: string): string {
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

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const steps = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10];
  return steps.find((s) => s >= v) ?? Math.ceil(v);
}

function panelSvg(p: Panel, x0: number, report: KvEvalReport, byPolicy: Map<string, KvEvalRow[]>): string {
  const budgets = report.budgets;
  const lo = Math.log(Math.min(...budgets));
  const hi = Math.log(Math.max(...budgets));
  const span = hi > lo ? hi - lo : 1;
  const px = (f: number) => x0 + (hi > lo ? ((Math.log(f) - lo) / span) * PANEL_W : PANEL_W / 2);
  const py = (v: number) => MARGIN.top + PANEL_H - (Math.min(v, p.yMax) / p.yMax) * PANEL_H;
  const out: string[] = [];
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top - 14}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${x0}" y="${MARGIN.top}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#444"/>`);
  for (let i = 0; i <= 4; i++) { // y grid: 5 lines
    const v = (p.yMax * i) / 4;
    const y = py(v).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(v * 100)}%</text>`);
  }
  for (const f of budgets) { // x ticks: the budgets
    const x = px(f).toFixed(1);
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${MARGIN.top + PANEL_H + 16}" text-anchor="middle">${+(f * 100).toPrecision(3)}%</text>`);
  }
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top + PANEL_H + 36}" text-anchor="middle">budget (fraction of nKv kept, log scale)</text>`);
  [...byPolicy.values()].forEach((rows, i) => {
    const pts = rows
      .map((r) => [r.fraction, p.value(r)] as const)
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
  const legend = [...byPolicy.keys()].map((name, i) => {
    const y = MARGIN.top + 10 + i * 20;
    const x = MARGIN.left + 2 * PANEL_W + MARGIN.gap + 30;
    const color = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    return `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
      `<text x="${x + 30}" y="${y}" dominant-baseline="middle">${esc(name)}</text>`;
  });
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
