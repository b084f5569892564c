/**
 * The pieces of the HTML reports (reproduce, study): Markdown tables rendered as tables, and
 * line charts as inline SVG with numbered axes and a legend. A report must open offline,
 * from the file system, with no script.
 */
import { marked } from 'marked';

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Our own Markdown (tables, headings, emphasis) as HTML; it holds no HTML of its own. */
export function markdownHtml(md: string): string {
  return marked.parse(md, { async: false, gfm: true });
}

/** One line of our Markdown (bold, code) as inline HTML. */
export function inlineHtml(md: string): string {
  return marked.parseInline(md, { async: false, gfm: true });
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #eee;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px}th{background:#f6f6f8;text-align:left}
td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:8px;vertical-align:top}code{background:#f3f3f3;padding:0 3px;border-radius:3px}
</style></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

export interface Series {
  name: string;
  /** [x, y], or [x, y, e] with e drawn as a ±e bar. */
  points: ([number, number] | [number, number, number])[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** A log-scaled x axis (budgets of images per class). */
  logX?: boolean;
  /** Tick labels at given x values (budgets); numbered ticks otherwise. */
  xTicks?: Map<number, string>;
  /** How y values are printed on the axis (e.g. as percentages). */
  yFormat?: (y: number) => string;
}

const COLOURS = ['#222', '#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f'];

/** Round steps (1, 2, 5 × 10^k) covering [lo, hi], about `n` of them. */
function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = 640, H = 330, L = 60, R = 220, T = 30, B = 44;
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) return '';
  const fx = (x: number) => (o.logX ? Math.log10(x) : x);
  const xs = pts.map((p) => fx(p[0]));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1] - (p[2] ?? 0))), Math.max(...pts.map((p) => p[1] + (p[2] ?? 0)))];
  if (y0 === y1) [y0, y1] = [y0 - 1e-3, y1 + 1e-3];
  const sx = (x: number) => L + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const yf = o.yFormat ?? ((y: number) => String(Number(y.toPrecision(3))));
  const grid = niceTicks(y0, y1).map((y) => `<line x1="${L}" x2="${W - R}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#eee"/><text x="${L - 6}" y="${(sy(y) + 4).toFixed(1)}" font-size="10" text-anchor="end">${esc(yf(y))}</text>`);
  const xTicks = o.xTicks ? [...o.xTicks] : niceTicks(x0, x1).filter((x) => !o.logX).map((x): [number, string] => [x, String(x)]);
  const xt = xTicks.map(([x, t]) => `<line x1="${sx(x).toFixed(1)}" x2="${sx(x).toFixed(1)}" y1="${H - B}" y2="${H - B + 4}" stroke="#999"/><text x="${sx(x).toFixed(1)}" y="${H - B + 15}" font-size="10" text-anchor="middle">${esc(t)}</text>`);
  const body = series.map((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    const line = `<polyline fill="none" stroke="${c}" stroke-width="1.6" points="${s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ')}"/>`;
    const bars = s.points.filter((p) => p[2] !== undefined).map((p) => `<line x1="${sx(p[0]).toFixed(1)}" x2="${sx(p[0]).toFixed(1)}" y1="${sy(p[1] - p[2]!).toFixed(1)}" y2="${sy(p[1] + p[2]!).toFixed(1)}" stroke="${c}"/>`).join('');
    const key = `<line x1="${W - R + 10}" x2="${W - R + 26}" y1="${T + 10 + i * 16}" y2="${T + 10 + i * 16}" stroke="${c}" stroke-width="2"/><text x="${W - R + 32}" y="${T + 14 + i * 16}" font-size="11">${esc(s.name)}</text>`;
    return line + bars + key;
  });
  const mid = T + (H - T - B) / 2;
  return `<figure><svg width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}"><rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#ccc"/>${grid.join('')}${xt.join('')}<text x="${L}" y="18" font-size="12" font-weight="bold">${esc(o.title)}</text><text x="${(L + W - R) / 2}" y="${H - 8}" font-size="11" text-anchor="middle">${esc(o.xLabel)}</text><text x="14" y="${mid}" font-size="11" transform="rotate(-90 14 ${mid})" text-anchor="middle">${esc(o.yLabel)}</text>${body.join('')}</svg></figure>`;
}
