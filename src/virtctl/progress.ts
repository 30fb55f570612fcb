// The progress of a transfer, as upstream's virtctl shows it (cheggaaa/pb's
// "full" template, in bytes): a redrawn bar on a terminal, and a plain line at
// every tenth of the way when the output is a file or a pipe. The formatting is
// pure; progress() draws.
import cliProgress from 'cli-progress';

const UNITS: [number, string][] = [
  [2 ** 40, 'TiB'],
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
];

/** Bytes in IEC units with two decimals, as pb prints them: "512 B", "1.50 MiB". */
export function formatBytes(bytes: number): string {
  const unit = UNITS.find(([size]) => bytes >= size);
  return unit ? `${(bytes / unit[0]).toFixed(2)} ${unit[1]}` : `${Math.round(bytes)} B`;
}

/** Whole seconds as Go prints a time.Duration: "0s", "42s", "3m5s", "1h0m7s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, rest] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (h) return `${h}h${m}m${rest}s`;
  if (m) return `${m}m${rest}s`;
  return `${rest}s`;
}

/** How far a transfer is, 0 to 100; an empty transfer is done when it ends. */
export const percentOf = (value: number, total: number) => (total > 0 ? Math.min(100, (value / total) * 100) : 100);

/** The bytes a second since the start. */
const speedOf = (value: number, elapsedMs: number) => (elapsedMs > 0 ? (value * 1000) / elapsedMs : 0);

/** pb's bar: "[", "-" for what is done, ">" where it is, "_" for what is left, "]". */
export function bar(value: number, total: number, width: number): string {
  const done = Math.floor((percentOf(value, total) / 100) * width);
  if (done >= width) return `[${'-'.repeat(width)}]`;
  return `[${'-'.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${'_'.repeat(width - Math.max(done, 0))}]`;
}

/** The terminal line: "1.00 MiB / 10.00 MiB [-->______] 10.00% 2.00 MiB p/s ETA 4s". */
export function progressBarLine(value: number, total: number, elapsedMs: number, width = 40): string {
  const speed = speedOf(value, elapsedMs);
  const eta = speed > 0 ? (total - value) / speed : 0;
  return `${formatBytes(value)} / ${formatBytes(total)} ${bar(value, total, width)} ${percentOf(value, total).toFixed(2)}% ${formatBytes(speed)} p/s ETA ${formatDuration(eta)}`;
}

/** The line written when the output is not a terminal: "Uploaded 1.00 MiB / 10.00 MiB (10%), 2.00 MiB/s". */
export function progressPlainLine(value: number, total: number, elapsedMs: number): string {
  return `Uploaded ${formatBytes(value)} / ${formatBytes(total)} (${Math.floor(percentOf(value, total))}%), ${formatBytes(speedOf(value, elapsedMs))}/s`;
}

/**
 * The step (a multiple of `step` percent) a transfer reached, when it is past
 * the one last reported; undefined when there is nothing new to report.
 */
export function nextMilestone(lastReported: number, value: number, total: number, step = 10): number | undefined {
  const reached = Math.floor(percentOf(value, total) / step) * step;
  return reached > lastReported ? reached : undefined;
}

export interface Progress {
  /** Starts at 0 of `total` bytes. */
  start(total: number): void;
  /** `bytes` more were sent. */
  add(bytes: number): void;
  /** Back to 0, after `note` (why): a retry. */
  restart(note: string): void;
  /** Done: the last state stays on screen. */
  stop(): void;
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** A bar on a terminal (cli-progress redraws it), plain lines at every 10% otherwise. */
export function progress(stream: ProgressOutput, now: () => number = Date.now): Progress {
  let total = 0;
  let value = 0;
  let startedAt = 0;
  if (stream.isTTY) {
    const drawn = new cliProgress.SingleBar({
      stream: stream as NodeJS.WritableStream,
      // The bar takes what the terminal leaves of its width after the numbers (about 60 columns).
      format: (_options, params) =>
        progressBarLine(params.value, params.total, now() - params.startTime, Math.max(10, Math.min(40, (stream.columns ?? 100) - 62))),
      hideCursor: true,
      linewrap: true,
      fps: 10,
    });
    return {
      start(size) {
        total = size;
        value = 0;
        drawn.start(total, 0);
      },
      add(bytes) {
        value += bytes;
        drawn.update(value);
      },
      restart(note) {
        drawn.stop();
        stream.write(`${note}\n`);
        value = 0;
        drawn.start(total, 0);
      },
      stop() {
        drawn.update(value);
        drawn.stop();
      },
    };
  }
  let reported = -1;
  const report = () => {
    const milestone = nextMilestone(reported, value, total);
    if (milestone === undefined) return;
    reported = milestone;
    stream.write(`${progressPlainLine(value, total, now() - startedAt)}\n`);
  };
  return {
    start(size) {
      total = size;
      value = 0;
      reported = -1;
      startedAt = now();
      report();
    },
    add(bytes) {
      value += bytes;
      report();
    },
    restart(note) {
      stream.write(`${note}\n`);
      value = 0;
      reported = -1;
      startedAt = now();
      report();
    },
    stop() {
      report();
    },
  };
}
