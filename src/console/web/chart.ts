// A line chart as inline SVG, drawn by hand: a few series over a time window,
// scaled to the largest value (./plot.ts).
import type { Points } from '../vmi-metrics.ts';
import { CHART, chartLines } from './plot.ts';

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

export interface ChartLine {
  label: string;
  points: Points;
}

/** An SVG chart of `lines` over [from, to] (unix seconds), its y axis labelled with `format`. */
export function lineChart(lines: ChartLine[], from: number, to: number, format: (value: number) => string): SVGElement {
  const { max, lines: polylines } = chartLines(
    lines.map((l) => l.points),
    from,
    to,
  );
  const pad = { left: 70, bottom: 18, top: 6, right: 6 };
  const root = svg('svg', {
    viewBox: `0 0 ${CHART.width + pad.left + pad.right} ${CHART.height + pad.top + pad.bottom}`,
    width: String(CHART.width + pad.left + pad.right),
    role: 'img',
  });
  const plot = svg('g', { transform: `translate(${pad.left},${pad.top})` });
  plot.append(
    svg('rect', { class: 'frame', x: '0', y: '0', width: String(CHART.width), height: String(CHART.height) }),
    svg('text', { class: 'axis', x: '-4', y: '10', 'text-anchor': 'end' }, format(max)),
    svg('text', { class: 'axis', x: '-4', y: String(CHART.height), 'text-anchor': 'end' }, format(0)),
    svg('text', { class: 'axis', x: '0', y: String(CHART.height + 14) }, `-${Math.round((to - from) / 60)} min`),
    svg('text', { class: 'axis', x: String(CHART.width), y: String(CHART.height + 14), 'text-anchor': 'end' }, 'now'),
  );
  polylines.forEach((points, i) => {
    const drawn = points ? points.split(' ') : [];
    plot.append(svg('polyline', { class: `line line-${i}`, points, 'data-label': lines[i].label, 'data-points': String(drawn.length) }));
    // The latest point marked: a line of one point is seen too.
    const last = drawn.at(-1)?.split(',');
    if (last) plot.append(svg('circle', { class: `dot line-${i}`, cx: last[0], cy: last[1], r: '2.5' }));
  });
  root.append(plot);
  return root;
}
