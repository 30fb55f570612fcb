// The single byte range a clone target (or any HTTP client) asks the clone
// source for. A header that cannot be understood, or one asking for several
// ranges, is answered with the whole disk, as RFC 9110 allows: a clone only
// ever needs one range, and multipart answers would be a second format to get
// right for no user.

export type ByteRange = { kind: 'whole' } | { kind: 'part'; start: number; end: number } | { kind: 'unsatisfiable' };

const DIGITS = /^\d+$/;

function position(text: string): number | undefined {
  if (!DIGITS.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** `end` is inclusive, as in the header. */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return { kind: 'whole' };
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match || match[1].includes(',')) return { kind: 'whole' };
  const spec = match[1].trim();
  const dash = spec.indexOf('-');
  if (dash < 0) return { kind: 'whole' };
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  if (first === '') {
    const suffix = position(last);
    if (suffix === undefined) return { kind: 'whole' };
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = position(first);
  if (start === undefined) return { kind: 'whole' };
  let end = size - 1;
  if (last !== '') {
    const requestedEnd = position(last);
    if (requestedEnd === undefined || requestedEnd < start) return { kind: 'whole' };
    end = Math.min(requestedEnd, size - 1);
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', start, end };
}

export function contentRange(range: { start: number; end: number }, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

export function unsatisfiedContentRange(size: number): string {
  return `bytes */${size}`;
}

/** The total length in a `Content-Range: bytes a-b/total` answer, when the server knows it. */
export function totalFromContentRange(header: string | undefined): number | undefined {
  const match = header && /^\s*bytes\s+(?:\d+-\d+|\*)\/(\d+)\s*$/i.exec(header);
  return match ? position(match[1]) : undefined;
}
