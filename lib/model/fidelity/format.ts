/**
 * Text table and SVG plot of a RealKvEvalReport (run.ts).
 *
 * Table: the full cache first, then one row per policy x budget, then the
 * integer caches; columns budget, kept (rows held / full), memory (bytes /
 * full f16 cache), bits/byte, change vs full (± standard error over
 * passages) and needle accuracy.
 *
 * SVG: two panels against the budget (log x axis), one line per policy:
 * left the change in bits/byte, right the needle accuracy; the full cache
 * is a dashed reference line and the integer caches are points at their
 * memory fraction. The x axis is what the cache really kept (rows; int
 * caches: bytes), so razor, which keeps its retrieval heads whole, sits
 * right of its nominal budget.
 */
import type { RealKvEvalReport, RealKvEvalRow } from './run.js';

function pct(x: number | undefined, digits = 0): string {
  return x === undefined || Number.isNaN(x) ? '-' : `${(x * 100).toFixed(digits)}%`;
}

function signed(x: number, digits = 3): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(digits)}`;
}

function budgetLabel(r: RealKvEvalRow): string {
  return r.fraction === null ? (r.kind === 'full' ? '100%' : 'all') : `${+(r.fraction * 100).toPrecision(3)}%`;
}

/** Summary lines: model, tasks, the full cache's figures. */
export function describeRealReport(report: RealKvEvalReport): string[] {
  const m = report.model;
  const s = report.settings;
  const full = report.rows.find((r) => r.kind === 'full');
  const out = [
    `model ${m.name} (${(m.parameters / 1e6).toFixed(2)}M parameters; ${m.nLayers} layers, ${m.nHeads} query / ${m.nKvHeads} KV heads x ${m.headDim}; trained context ${m.context}${m.trainingStep !== null ? `; step ${m.trainingStep}` : ''}${m.weightsSha256 ? `; weights ${m.weightsSha256}` : ''}), seed ${s.seed}, ${report.cpu}`,
  ];
  if (s.passages > 0) out.push(`loss: ${s.passages} held-out passages; ${s.context}-byte context compressed after prefill, then ${s.continuation} bytes scored teacher-forced through the compressed cache`);
  if (s.trials > 0) out.push(`needle: ${s.trials} trials; ${s.needleContext}-byte context with "The key is <${s.digits} digits>." at 10-30% depth; after compression "\\nThe key is <first digit>", the other ${s.digits - 1} digits greedy; correct = all`);
  const parts: string[] = [];
  if (full?.loss) parts.push(`${full.loss.bitsPerByte.toFixed(4)} bits/byte`);
  if (full?.needle) {
    parts.push(`needle accuracy ${pct(full.needle.accuracy, 1)} (${full.needle.correct}/${full.needle.trials}), key ${full.needle.keyBits.toFixed(2)} bits/digit`);
  }
  if (parts.length) out.push(`full cache: ${parts.join('; ')}`);
  const ctl = report.needleControl;
  if (ctl) out.push(`needle control (full cache, the needle line removed): accuracy ${pct(ctl.accuracy, 1)}, key ${ctl.keyBits.toFixed(2)} bits/digit (uniform digits: 3.32)`);
  out.push(`budgets: ${report.budgetRule}`);
  out.push(`query-based policies score with the cache's remembered window (last ${s.window} context queries)${s.draft ? `; speckv: ${s.lookahead} lookahead bytes from ${s.draft}` : ''}`);
  const h = report.retrievalHeads;
  if (h) {
    const picked = h.picked.flatMap((row, l) => row.map((p, g) => (p ? `layer ${l} KV head ${g}` : ''))).filter(Boolean);
    out.push(`razor retrieval heads (random printable block of ${h.period} bytes x ${h.repeats}; top 14% induction + 1% echo query heads): ${picked.length ? picked.join(', ') : 'none'}`);
  }
  return out;
}

/** The report as text (see the module comment). */
export function formatRealKvEvalTable(report: RealKvEvalReport): string {
  const header = ['policy', 'budget', 'kept', 'memory', 'bits/byte', 'vs full', 'needle', 'key bits'];
  const body = report.rows.map((r) => {
    const cell = r.loss ?? r.needle;
    return [
      r.policy, budgetLabel(r), pct(cell?.kept, 1), pct(cell?.memory, 1),
      r.loss ? r.loss.bitsPerByte.toFixed(4) : '-',
      r.loss ? (r.kind === 'full' ? '-' : `${signed(r.loss.delta)} ±${r.loss.deltaSe.toFixed(3)}`) : '-',
      r.needle ? pct(r.needle.accuracy) : '-',
      r.needle ? r.needle.keyBits.toFixed(2) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [...describeRealReport(report), '', line(header), line(widths.map((w) => '-'.repeat(w)))];
  let prev = '';
  report.rows.forEach((r, i) => {
    if (prev && r.policy !== prev) out.push('');
    prev = r.policy;
    out.push(line(body[i]!));
  });
  for (const s of report.skipped) {
    const at = s.fraction === null ? '' : ` at ${+(s.fraction * 100).toPrecision(3)}%`;
    out.push('', `skipped ${s.policy}${at}${s.task === 'all' ? '' : ` (${s.task})`}: ${s.reason}`);
  }
  return out.join('\n');
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];
const PANEL_W = 340;
const PANEL_H = 240;
const MARGIN = { left: 62, top: 40, bottom: 46, gap: 76 };
const LEGEND_W = 170;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 0.1;
  const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 3, 5, 10];
  return steps.find((s) => s >= v) ?? Math.ceil(v);
}

/** Where a row sits on the x axis: the rows its cache really kept (razor keeps more than its budget); int caches: their memory; sparse methods: the rows each step attends (their budget). */
function xOf(r: RealKvEvalRow): number {
  const cell = r.loss ?? r.needle;
  if (!cell) return 1;
  if (r.kind === 'sparse') return r.fraction ?? 1;
  return r.kind === 'quant' ? cell.memory : cell.kept;
}

interface Panel {
  title: string;
  value: (r: RealKvEvalRow) => number | undefined;
  yMin: number;
  yMax: number;
  label: (v: number) => string;
  /** Grid intervals; default 4. */
  ticks?: number;
  /** A dotted horizontal line (the needle control). */
  reference?: number;
}

function panelSvg(p: Panel, x0: number, report: RealKvEvalReport, policies: string[]): string {
  const xs = [...report.settings.budgets];
  for (const r of report.rows) { const x = xOf(r); if (x > 0) xs.push(x); }
  const lo = Math.log(Math.min(...xs, 1));
  const hi = Math.log(1);
  const span = hi > lo ? hi - lo : 1;
  const px = (f: number) => x0 + ((Math.log(f) - lo) / span) * PANEL_W;
  const py = (v: number) => MARGIN.top + PANEL_H - ((Math.min(Math.max(v, p.yMin), p.yMax) - p.yMin) / (p.yMax - p.yMin)) * PANEL_H;
  const out: string[] = [];
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top - 14}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${x0}" y="${MARGIN.top}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#444"/>`);
  const ticks = p.ticks ?? 4;
  for (let i = 0; i <= ticks; i++) {
    const v = p.yMin + ((p.yMax - p.yMin) * i) / ticks;
    const y = py(v).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(p.label(v))}</text>`);
  }
  for (const f of [...report.settings.budgets, 1]) {
    const x = px(f).toFixed(1);
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${MARGIN.top + PANEL_H + 16}" text-anchor="middle">${+(f * 100).toPrecision(3)}%</text>`);
  }
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${MARGIN.top + PANEL_H + 36}" text-anchor="middle">context kept: rows (int8/int4: bytes), log scale</text>`);
  const full = report.rows.find((r) => r.kind === 'full');
  const fv = full ? p.value(full) : undefined;
  if (fv !== undefined) {
    const y = py(fv).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#000" stroke-dasharray="4 4"/>`);
  }
  if (p.reference !== undefined && Number.isFinite(p.reference)) {
    const y = py(p.reference).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#d00" stroke-dasharray="1 3"/>`);
    out.push(`<text x="${x0 + PANEL_W - 4}" y="${(+y - 4).toFixed(1)}" text-anchor="end" fill="#d00">without the needle</text>`);
  }
  policies.forEach((name, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    const rows = report.rows.filter((r) => r.policy === name);
    const pts = rows
      .map((r) => [xOf(r), p.value(r)] as const)
      .filter((pt): pt is readonly [number, number] => pt[1] !== undefined && Number.isFinite(pt[1]))
      .map(([f, v]) => `${px(f).toFixed(1)},${py(v).toFixed(1)}`);
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.join(' ')}"/>`);
    }
    for (const pt of pts) {
      const [x, y] = pt.split(',');
      out.push(`<circle cx="${x}" cy="${y}" r="${pts.length > 1 ? 2.5 : 4}" fill="${color}"/>`);
    }
  });
  return out.join('\n');
}

/** The SVG document (a string) for a report. */
export function renderRealKvEvalSvg(report: RealKvEvalReport): string {
  const policies = [...new Set(report.rows.filter((r) => r.kind !== 'full').map((r) => r.policy))];
  const deltas = report.rows.map((r) => r.loss?.delta).filter((d): d is number => d !== undefined && Number.isFinite(d));
  const dMax = niceMax(Math.max(0, ...deltas));
  // Below zero in steps of dMax / 4, so every grid line sits on a round value.
  const step = dMax / 4;
  const dMin = Math.min(0, ...deltas) < 0 ? -Math.ceil(niceMax(-Math.min(...deltas)) / step - 1e-9) * step : 0;
  const panels: Panel[] = [];
  if (report.settings.passages > 0) {
    panels.push({ title: 'loss change vs full cache (bits/byte)', value: (r) => (r.kind === 'full' ? 0 : r.loss?.delta), yMin: dMin, yMax: dMax, ticks: Math.round((dMax - dMin) / step), label: (v) => v.toFixed(3) });
  }
  const fullRow = report.rows.find((r) => r.kind === 'full');
  if (report.settings.trials > 0 && (fullRow?.needle?.accuracy ?? 0) >= 0.5) {
    panels.push({ title: 'needle accuracy (copy test)', value: (r) => r.needle?.accuracy, yMin: 0, yMax: 1, label: (v) => `${Math.round(v * 100)}%` });
  } else if (report.settings.trials > 0) {
    // Greedy copying fails even with the full cache: plot the graded signal instead.
    const bits = report.rows.map((r) => r.needle?.keyBits).filter((b): b is number => b !== undefined && Number.isFinite(b));
    const yMax = Math.ceil(Math.max(3.5, ...bits, report.needleControl?.keyBits ?? 0));
    panels.push({ title: 'needle key bits per digit (lower = retrieved)', value: (r) => r.needle?.keyBits, yMin: 0, yMax, label: (v) => v.toFixed(1), reference: report.needleControl?.keyBits });
  }
  const width = MARGIN.left + panels.length * (PANEL_W + MARGIN.gap) + LEGEND_W;
  const height = MARGIN.top + PANEL_H + MARGIN.bottom + 30;
  const legendX = MARGIN.left + panels.length * (PANEL_W + MARGIN.gap) - MARGIN.gap + 30;
  const legend = policies.map((name, i) => {
    const y = MARGIN.top + 10 + i * 16;
    const color = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    return `<line x1="${legendX}" y1="${y}" x2="${legendX + 24}" y2="${y}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
      `<text x="${legendX + 30}" y="${y}" dominant-baseline="middle">${esc(name)}</text>`;
  });
  const full = report.rows.find((r) => r.kind === 'full');
  const caption = `${report.model.name}: full cache (dashed) ${full?.loss ? `${full.loss.bitsPerByte.toFixed(3)} bits/byte` : ''}${full?.loss && full?.needle ? ', ' : ''}${full?.needle ? `needle ${pct(full.needle.accuracy)} (${full.needle.keyBits.toFixed(2)} bits/digit)` : ''}; int8/int4: points at their memory fraction`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((p, i) => panelSvg(p, MARGIN.left + i * (PANEL_W + MARGIN.gap), report, policies)),
    ...legend,
    `<text x="${MARGIN.left}" y="${height - 10}" font-size="10" fill="#555">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
