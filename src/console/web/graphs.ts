// The VM page's graphs: CPU, memory, network and disk over the last hour,
// asked of the console server (which checks the user may read the VMI and
// answers from Prometheus or its own history), redrawn every 15 s.
import { api, ApiError } from './api.ts';
import { type ChartLine, lineChart } from './chart.ts';
import { formatBytes, formatCores } from './plot.ts';
import { h } from './dom.ts';
import { type SeriesKey, type VmiMetrics, vmiMetricsPath } from '../vmi-metrics.ts';

const REFRESH_MS = 15_000;

const GRAPHS: { id: string; title: string; lines: [SeriesKey, string][]; format: (v: number) => string }[] = [
  { id: 'cpu', title: 'CPU (cores)', lines: [['cpu', 'used']], format: formatCores },
  { id: 'memory', title: 'Memory in use', lines: [['memory', 'used']], format: formatBytes },
  {
    id: 'network',
    title: 'Network',
    lines: [
      ['networkReceive', 'received'],
      ['networkTransmit', 'sent'],
    ],
    format: (v) => `${formatBytes(v)}/s`,
  },
  {
    id: 'disk',
    title: 'Disk',
    lines: [
      ['diskRead', 'read'],
      ['diskWrite', 'written'],
    ],
    format: (v) => `${formatBytes(v)}/s`,
  },
];

const SOURCES: Record<VmiMetrics['source'], string> = {
  prometheus: 'From Prometheus, the last hour.',
  console: "From the console's own samples of virt-handler's metrics (every 15 s, kept for an hour): no Prometheus is configured.",
};

/** The graphs section of VM `ns/name`, and what stops its refreshing. */
export function vmGraphs(ns: string, name: string): { section: HTMLElement; stop: () => void } {
  const note = h('p', { id: 'vm-graphs-source', class: 'hint' }, 'Loading graphs...');
  const figures = new Map(GRAPHS.map((g) => [g.id, h('figure', { class: 'graph', 'data-graph': g.id })]));
  const section = h('section', { id: 'vm-graphs' }, note, h('div', { class: 'graphs' }, ...figures.values()));
  const render = (metrics: VmiMetrics) => {
    const to = Date.now() / 1000;
    const from = to - metrics.minutes * 60;
    for (const graph of GRAPHS) {
      const lines: ChartLine[] = graph.lines.map(([key, label]) => ({ label, points: metrics.series[key] }));
      // The latest value of each line, in the line's colour.
      const latest = lines.map((l, i) => {
        const last = l.points[l.points.length - 1];
        return h('span', { class: `legend-${i}` }, ` ${l.label} ${last ? graph.format(last[1]) : '-'}`);
      });
      figures
        .get(graph.id)!
        .replaceChildren(h('figcaption', {}, h('strong', {}, graph.title), ...latest), lineChart(lines, from, to, graph.format));
    }
    const empty = Object.values(metrics.series).every((points) => points.length === 0);
    note.textContent = `${SOURCES[metrics.source]}${empty ? ' No samples yet.' : ''}`;
  };
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  async function refresh() {
    try {
      const metrics = await api<VmiMetrics>('GET', vmiMetricsPath(ns, name));
      if (!stopped) render(metrics);
    } catch (error) {
      const notRunning = error instanceof ApiError && error.code === 404;
      note.textContent = notRunning ? 'No graphs: the VM is not running.' : `No graphs: ${(error as Error).message}`;
      for (const figure of figures.values()) figure.replaceChildren();
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  void refresh();
  return {
    section,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
