// qemu-img -p reports progress as "    (12.34/100%)\r" on stdout, rewriting
// the line in place. Output arrives in arbitrary pieces, so a report can be
// split between two of them.

const REPORT = /\((\d+(?:\.\d+)?)\/100%\)/g;

/** The last complete report in `text`, as a percentage. */
export function lastQemuProgress(text: string): number | undefined {
  let last: number | undefined;
  for (const match of text.matchAll(REPORT)) last = Number(match[1]);
  return last === undefined ? undefined : Math.min(100, last);
}

/** Feeds qemu-img's stdout piece by piece; keeps an unfinished report for the next piece. */
export class QemuProgressReader {
  #pending = '';

  /** The newest percentage completed by this piece, if any. */
  feed(piece: string): number | undefined {
    const text = this.#pending + piece;
    const lastBreak = Math.max(text.lastIndexOf('\r'), text.lastIndexOf('\n'));
    const complete = text.slice(0, lastBreak + 1);
    const rest = text.slice(lastBreak + 1);
    // A report qemu-img has not ended with \r yet is still whole once the ")" is there.
    const restValue = lastQemuProgress(rest);
    this.#pending = restValue === undefined ? rest.slice(-64) : '';
    return restValue ?? lastQemuProgress(complete);
  }
}
