// Which parts of a buffer hold data. A disk image is mostly zeros; leaving
// the all-zero blocks of a raw disk unwritten keeps disk.img sparse, so a
// 10 GiB disk with 300 MiB of data takes 300 MiB of the claim.

/** The filesystem's allocation unit on every filesystem a claim is likely to use. */
export const SPARSE_BLOCK_BYTES = 4096;

const ZEROS = Buffer.alloc(64 * 1024);

export function isAllZero(buf: Buffer): boolean {
  for (let at = 0; at < buf.length; at += ZEROS.length) {
    const piece = buf.subarray(at, Math.min(at + ZEROS.length, buf.length));
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false;
  }
  return true;
}

export interface DataRun {
  start: number;
  /** Exclusive. */
  end: number;
}

/**
 * The runs of `buf` made of consecutive blocks with any non-zero byte, each
 * block starting at a multiple of `blockBytes` from the buffer's start (the
 * last block may be short). Adjacent data blocks form one run, so one write
 * covers them.
 */
export function dataRuns(buf: Buffer, blockBytes = SPARSE_BLOCK_BYTES): DataRun[] {
  const runs: DataRun[] = [];
  let open: DataRun | undefined;
  for (let start = 0; start < buf.length; start += blockBytes) {
    const end = Math.min(start + blockBytes, buf.length);
    if (isAllZero(buf.subarray(start, end))) {
      open = undefined;
    } else if (open) {
      open.end = end;
    } else {
      open = { start, end };
      runs.push(open);
    }
  }
  return runs;
}
