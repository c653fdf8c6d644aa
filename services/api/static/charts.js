// Small inline-SVG charts (no library): a line with its area, or bars, over the last blocks
// (or over time). The SVG stretches to its box (non-scaling strokes); labels are HTML around
// it, so text is never distorted and stays readable by screen readers through the figure's
// description. The y scale runs from 0 (or the lowest value) to a round number at or above
// the highest, both written at the plot's left edge.

import { h } from './dom.js';

const W = 300;
const H = 90;
const PAD = 4;

/** The smallest of 1, 2, 2.5, 5 × a power of ten that is at least `v` (v > 0). */
export function roundUp(v) {
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * mag >= v - 1e-9) return step * mag;
  return 10 * mag;
}

const blockX = (x) => `#${x}`;

/**
 * points: [{x, y}] sorted by x; format(y) for labels; kind 'line' or 'bars'; xLabel(x) for
 * the x axis (block heights by default) and `over` for the description ('blocks a to b').
 * Returns a <figure>.
 */
export function chart({ id, title, points, format, kind = 'line', empty = 'Collecting data…',
  xLabel = blockX, over = null }) {
  const caption = h('figcaption', {},
    h('span', { class: 'chart-title', text: title }),
    points.length ? h('span', { class: 'chart-last', text: format(points.at(-1).y) }) : null);
  if (points.length < 2) {
    return h('figure', { class: 'chart', id }, caption,
      h('div', { class: 'chart-empty muted', text: empty }));
  }
  const ys = points.map((p) => p.y);
  const max = Math.max(...ys);
  const min = Math.min(0, ...ys);
  const avg = ys.reduce((a, b) => a + b, 0) / ys.length;
  const x0 = points[0].x;
  const x1 = points.at(-1).x;
  const spanX = Math.max(1, x1 - x0);
  const top = max > min ? min + roundUp(max - min) : min + 1; // a round top, at or above max
  const spanY = top - min;
  const sx = (x) => PAD + ((x - x0) / spanX) * (W - 2 * PAD);
  const sy = (y) => H - PAD - ((y - min) / spanY) * (H - 2 * PAD);
  const label = `${title} over ${over || `blocks ${x0} to ${x1}`}: last ${format(points.at(-1).y)}, `
    + `average ${format(avg)}, highest ${format(max)}; scale ${format(min)} to ${format(top)}.`;
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': label, class: `chart-svg ${kind}` });
  svg.append(h('svg:line', { x1: 0, x2: W, y1: sy(avg), y2: sy(avg), class: 'avg',
    'vector-effect': 'non-scaling-stroke' }));
  if (kind === 'bars') {
    const slot = (W - 2 * PAD) / (x1 - x0 + 1);
    const bw = Math.max(1, slot * 0.7);
    for (const p of points) {
      const top = sy(p.y);
      svg.append(h('svg:rect', { x: PAD + (p.x - x0 + 0.5) * slot - bw / 2, y: top, width: bw,
        height: Math.max(p.y > 0 ? 1 : 0, H - PAD - top), class: 'bar' }));
    }
  } else {
    const line = points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join('');
    const area = `${line}L${sx(x1).toFixed(1)},${H - PAD}L${sx(x0).toFixed(1)},${H - PAD}Z`;
    svg.append(h('svg:path', { d: area, class: 'area' }));
    svg.append(h('svg:path', { d: line, class: 'line', 'vector-effect': 'non-scaling-stroke' }));
  }
  svg.dataset.points = String(points.length);
  return h('figure', { class: 'chart', id }, caption,
    h('div', { class: 'chart-plot' }, svg,
      h('span', { class: 'chart-y chart-y-max', 'aria-hidden': 'true', text: format(top) }),
      h('span', { class: 'chart-y chart-y-min', 'aria-hidden': 'true', text: format(min) })),
    h('div', { class: 'chart-axis muted', 'aria-hidden': 'true' },
      h('span', { text: xLabel(x0) }),
      h('span', { text: `avg ${format(avg)} · max ${format(max)}` }),
      h('span', { text: xLabel(x1) })));
}
