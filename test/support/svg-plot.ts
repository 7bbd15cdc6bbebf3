/**
 * Line charts as a standalone SVG document, drawn by hand (no dependency): panels stacked
 * vertically, each with its own y axis, a shared kind of x axis (seconds), ticks and a legend.
 */

export interface PlotSeries {
  label: string;
  color: string;
  /** [x, y] in data units, x ascending. */
  points: [number, number][];
  dashed?: boolean;
}

export interface PlotPanel {
  title: string;
  yLabel: string;
  series: PlotSeries[];
}

const W = 960;
const PANEL_H = 230;
const M = { left: 70, right: 190, top: 34, bottom: 36 };

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** About five round tick values from 0 to at least `max`. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

const fmt = (v: number): string =>
  Math.abs(v) >= 100 || v === Math.round(v) ? v.toFixed(0) : v.toPrecision(2);

function panel(p: PlotPanel, y0: number): string {
  const w = W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const all = p.series.flatMap((s) => s.points);
  const xt = ticks(Math.max(0, ...all.map(([x]) => x)));
  const yt = ticks(Math.max(0, ...all.map(([, y]) => y)));
  const xMax = xt[xt.length - 1];
  const yMax = yt[yt.length - 1];
  const X = (x: number) => M.left + (x / xMax) * w;
  const Y = (y: number) => y0 + M.top + h - (y / yMax) * h;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${y0 + 20}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const v of yt) {
    out.push(
      `<line x1="${M.left}" x2="${M.left + w}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${(Y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (const v of xt) {
    out.push(
      `<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${y0 + M.top + h}" y2="${y0 + M.top + h + 4}" stroke="#333"/>`,
      `<text x="${X(v).toFixed(1)}" y="${y0 + M.top + h + 16}" font-size="11" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  out.push(
    `<rect x="${M.left}" y="${y0 + M.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`,
    `<text x="${M.left + w / 2}" y="${y0 + PANEL_H - 4}" font-size="11" text-anchor="middle">seconds</text>`,
    `<text transform="translate(16 ${y0 + M.top + h / 2}) rotate(-90)" font-size="11" text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  p.series.forEach((s, i) => {
    if (s.points.length) {
      const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts}"/>`,
      );
    }
    const ly = y0 + M.top + 8 + i * 16;
    out.push(
      `<line x1="${M.left + w + 12}" x2="${M.left + w + 36}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${M.left + w + 42}" y="${ly + 4}" font-size="11">${esc(s.label)}</text>`,
    );
  });
  return out.join('\n');
}

/** The whole document: a title line, then the panels one below the other. */
export function svgPlot(title: string, panels: PlotPanel[]): string {
  const height = 30 + panels.length * PANEL_H;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${W / 2}" y="20" font-size="15" text-anchor="middle">${esc(title)}</text>`,
    ...panels.map((p, i) => panel(p, 30 + i * PANEL_H)),
    '</svg>',
    '',
  ].join('\n');
}
