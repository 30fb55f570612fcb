// Writes a raw byte stream to a file or a block device, in order. On a new
// file, all-zero blocks are skipped (left as holes), so a raw disk image
// stays as sparse as the image it came from. On a block device nothing is
// skipped: the device holds whatever was there before, and a skipped block
// would show that instead of zeros.
import { open, type FileHandle } from 'node:fs/promises';
import { dataRuns, SPARSE_BLOCK_BYTES } from './zero-blocks.ts';

/** Bytes gathered before a write: few system calls, and the blocks stay aligned to the file's. */
const BATCH_BYTES = 256 * SPARSE_BLOCK_BYTES;

export class DiskWriter {
  readonly #file: FileHandle;
  readonly #sparse: boolean;
  readonly #batch = Buffer.allocUnsafe(BATCH_BYTES);
  #batched = 0;
  /** Where the batch starts in the file. */
  #offset = 0;

  private constructor(file: FileHandle, sparse: boolean) {
    this.#file = file;
    this.#sparse = sparse;
  }

  /** A new, empty file (replacing one a failed attempt left), written sparsely. */
  static async createFile(path: string): Promise<DiskWriter> {
    return new DiskWriter(await open(path, 'w', 0o660), true);
  }

  /** An existing device, overwritten from its start. */
  static async openDevice(path: string): Promise<DiskWriter> {
    return new DiskWriter(await open(path, 'r+'), false);
  }

  get bytesWritten(): number {
    return this.#offset + this.#batched;
  }

  async write(chunk: Buffer): Promise<void> {
    let taken = 0;
    while (taken < chunk.length) {
      const copied = chunk.copy(this.#batch, this.#batched, taken);
      this.#batched += copied;
      taken += copied;
      if (this.#batched === BATCH_BYTES) await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    const data = this.#batch.subarray(0, this.#batched);
    const runs = this.#sparse ? dataRuns(data) : [{ start: 0, end: data.length }];
    for (const run of runs) {
      let at = run.start;
      while (at < run.end) {
        const { bytesWritten } = await this.#file.write(data, at, run.end - at, this.#offset + at);
        at += bytesWritten;
      }
    }
    this.#offset += this.#batched;
    this.#batched = 0;
  }

  /** Writes what is left, sets a file's length (trailing zeros were holes), syncs and closes; returns the bytes written. */
  async finish(): Promise<number> {
    try {
      await this.#flush();
      if (this.#sparse) await this.#file.truncate(this.#offset);
      await this.#file.sync();
      return this.#offset;
    } finally {
      await this.#file.close();
    }
  }

  async abandon(): Promise<void> {
    await this.#file.close().catch(() => undefined);
  }
}
