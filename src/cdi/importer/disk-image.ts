// Turning an image into the claim's raw disk, whichever way it arrives: as a
// stream (a download without ranges, a compressed file, an upload, a clone)
// or as something qemu-img can read in place (a URL with working ranges, a
// file the registry's init container left).
import { mkdir, open, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/log.ts';
import { DiskWriter } from './disk-writer.ts';
import {
  detectFormat,
  HEADER_BYTES,
  innerFormat,
  isCompression,
  isConvertible,
  type ConvertibleFormat,
  type ImageFormat,
} from './formats.ts';
import { failedAt, ImportError, imageTooLargeError, invalidBackingFile, STAGE, TopLevelError } from './messages.ts';
import { checkImage, convertToRaw, imageInfo, type ImageInfo, type QemuImage } from './qemu-img.ts';
import { gunzip, peek, unxz, type ByteStream } from './streams.ts';

export interface DiskTarget {
  /** disk.img in a Filesystem claim, or the Block claim's device. */
  path: string;
  block: boolean;
  sizeBytes: number;
  availableBytes: number;
}

/** Makes a Filesystem claim's disk.img as large as the claim allows; the added space is a hole. */
export async function growDisk(target: DiskTarget): Promise<void> {
  if (target.block) return;
  try {
    const { size } = await stat(target.path);
    if (size < target.sizeBytes) await truncate(target.path, target.sizeBytes);
  } catch (err) {
    throw failedAt(STAGE.resize, err);
  }
}

export async function createBlankDisk(target: DiskTarget): Promise<void> {
  // A block device is the blank disk already.
  if (target.block) return;
  try {
    const file = await open(target.path, 'w', 0o644);
    try {
      await file.truncate(target.sizeBytes);
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (err) {
    throw new TopLevelError(`${STAGE.blank}: ${(err as Error).message}`);
  }
}

/** What qemu-img says about `image`, failing unless it can become the target's disk. */
export async function validateImage(image: QemuImage, target: DiskTarget, name: string, known?: ImageInfo): Promise<ImageInfo> {
  let info = known;
  try {
    info ??= await imageInfo(image);
  } catch (err) {
    throw failedAt(STAGE.convert, err);
  }
  // A backing file would be read from this pod's filesystem, whatever the user meant by it.
  if (info.backingFile) throw new ImportError(`${STAGE.convert}: ${invalidBackingFile(name, info.backingFile)}`);
  if (info.virtualSize > target.availableBytes) throw imageTooLargeError(info.virtualSize, target.availableBytes);
  try {
    await checkImage(image);
  } catch (err) {
    throw failedAt(STAGE.convert, err);
  }
  return info;
}

/** Validates `image`, converts it to the raw disk and grows the disk to its size. */
export async function convertImage(
  image: QemuImage,
  target: DiskTarget,
  name: string,
  options: { info?: ImageInfo; onProgress?: (percent: number) => void; log: Logger },
): Promise<void> {
  const info = await validateImage(image, target, name, options.info);
  options.log.info('converting', { format: image.format, virtualSize: info.virtualSize, target: target.path });
  try {
    // qemu-img leaves zero runs unwritten, counting on a new file's holes:
    // what a failed attempt left in disk.img must not show through them.
    if (!target.block) await rm(target.path, { force: true });
    await convertToRaw(image, target.path, { block: target.block, onProgress: options.onProgress });
  } catch (err) {
    throw failedAt(STAGE.convert, failedAt(STAGE.rawConversion, err));
  }
  await growDisk(target);
}

export interface StreamedImage {
  source: ByteStream;
  target: DiskTarget;
  scratchDir: string;
  /** False for a clone: its source is a raw disk, whatever its first bytes look like. */
  detectFormat: boolean;
  /** What the image is called in messages: its URL, "upload". */
  name: string;
  /** Called once the source has been read to its end, before any conversion. */
  onReceived?: () => void;
  log: Logger;
}

/**
 * Writes a streamed image to the target: raw data straight to the disk, a
 * qcow2 (or another qemu-img format) to scratch space first, as qemu-img
 * cannot convert from a pipe.
 */
export async function writeImageStream(image: StreamedImage): Promise<void> {
  let stream = image.source;
  let format: ImageFormat = 'raw';
  if (image.detectFormat) {
    const outer = await peek(stream, HEADER_BYTES);
    if (outer.head.length === 0) throw new ImportError(`${image.name} is empty: there is no image to import`);
    format = detectFormat(outer.head);
    stream = outer.stream;
    if (isCompression(format)) {
      const inner = await peek(format === 'gzip' ? gunzip(stream) : unxz(stream), HEADER_BYTES);
      image.log.info('decompressing', { compression: format });
      format = innerFormat(inner.head);
      stream = inner.stream;
    }
  }
  image.log.info('streaming', { format, to: isConvertible(format) ? 'scratch' : image.target.path });
  if (isConvertible(format)) await viaScratch(stream, format, image);
  else await rawToDisk(stream, image);
}

async function rawToDisk(stream: ByteStream, image: StreamedImage): Promise<void> {
  const { target } = image;
  let writer: DiskWriter;
  try {
    writer = target.block ? await DiskWriter.openDevice(target.path) : await DiskWriter.createFile(target.path);
  } catch (err) {
    throw failedAt(STAGE.target, err);
  }
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      // Past the limit, keep reading without writing: the message then names
      // the image's real size, which is what the user needs to size a claim.
      if (total <= target.availableBytes) await writer.write(chunk);
    }
  } catch (err) {
    await writer.abandon();
    throw failedAt(STAGE.target, err);
  }
  if (total > target.availableBytes) {
    await writer.abandon();
    throw imageTooLargeError(total, target.availableBytes, STAGE.target);
  }
  image.onReceived?.();
  try {
    await writer.finish();
  } catch (err) {
    throw failedAt(STAGE.target, err);
  }
  await growDisk(target);
}

async function viaScratch(stream: ByteStream, format: ConvertibleFormat, image: StreamedImage): Promise<void> {
  const file = join(image.scratchDir, `image.${format}`);
  try {
    let writer: DiskWriter;
    try {
      await mkdir(image.scratchDir, { recursive: true });
      writer = await DiskWriter.createFile(file);
    } catch (err) {
      throw failedAt(STAGE.scratch, err);
    }
    try {
      for await (const chunk of stream) await writer.write(chunk);
      await writer.finish();
    } catch (err) {
      await writer.abandon();
      throw failedAt(STAGE.scratch, err);
    }
    image.onReceived?.();
    await convertImage({ kind: 'file', path: file, format }, image.target, image.name, { log: image.log });
  } finally {
    // Scratch space is the claim's size again: a second copy must not outlive the conversion.
    await rm(file, { force: true });
  }
}
