// The chart's pure parts: points scaled into the plot, and how figures read
// (bytes, cores). No DOM here, so unit tests run it under Node.
import type { Points } from '../vmi-metrics.ts';

export const CHART = { width: 420, height: 120 } as const;

/** The largest value of the series (1 when all are 0 or there is none), and each series as SVG polyline points. */
export function chartLines(series: Points[], from: number, to: number): { max: number; lines: string[] } {
  const max = Math.max(0, ...series.flatMap((points) => points.map(([, v]) => v))) || 1;
  const x = (t: number) => ((t - from) / (to - from)) * CHART.width;
  const y = (v: number) => CHART.height - (v / max) * CHART.height;
  const lines = series.map((points) =>
    points
      .filter(([t]) => t >= from && t <= to)
      .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`)
      .join(' '),
  );
  return { max, lines };
}

/** Bytes in binary units, one decimal: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** CPU in cores, as Kubernetes writes it: millicores below one core (0.0123 -> "12m"), else cores ("1.50"). */
export const formatCores = (cores: number) => (cores < 1 ? `${Math.round(cores * 1000)}m` : cores.toFixed(2));
