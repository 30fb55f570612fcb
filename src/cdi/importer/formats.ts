// Telling an image's format from its first bytes. The name a source gives a
// file (".img", ".qcow2") is not trusted: users upload qcow2 files called
// disk.img, and a wrong guess either corrupts the disk (a qcow2 copied as raw)
// or hands qemu-img a format it must not probe by itself.

/** Formats qemu-img turns into a raw disk; the names are qemu-img's `-f` names. */
export type ConvertibleFormat = 'qcow2' | 'qcow' | 'vmdk' | 'vdi' | 'vhdx' | 'vpc';
export type Compression = 'gzip' | 'xz';
export type ImageFormat = ConvertibleFormat | Compression | 'raw';

/** Enough of the start of an image for every signature detectFormat looks for. */
export const HEADER_BYTES = 1024;

const QCOW_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const VMDK_SPARSE_MAGIC = Buffer.from('KDMV', 'latin1');
const VHDX_MAGIC = Buffer.from('vhdxfile', 'latin1');
/** A dynamic VHD starts with a copy of its footer; a fixed one is raw data with the footer at the end. */
const VHD_MAGIC = Buffer.from('conectix', 'latin1');
/** VirtualBox's signature sits after a free-text banner. */
const VDI_SIGNATURE_OFFSET = 64;
const VDI_SIGNATURE = Buffer.from([0x7f, 0x10, 0xda, 0xbe]);

const startsWith = (head: Buffer, magic: Buffer, at = 0) =>
  head.length >= at + magic.length && head.subarray(at, at + magic.length).equals(magic);

export function detectFormat(head: Buffer): ImageFormat {
  if (startsWith(head, QCOW_MAGIC)) {
    // qcow (version 1) shares the magic; qemu-img has a separate driver for it.
    return head.length >= 8 && head.readUInt32BE(4) === 1 ? 'qcow' : 'qcow2';
  }
  if (startsWith(head, XZ_MAGIC)) return 'xz';
  if (startsWith(head, GZIP_MAGIC)) return 'gzip';
  if (startsWith(head, VMDK_SPARSE_MAGIC)) return 'vmdk';
  if (startsWith(head, VHDX_MAGIC)) return 'vhdx';
  if (startsWith(head, VHD_MAGIC)) return 'vpc';
  if (startsWith(head, VDI_SIGNATURE, VDI_SIGNATURE_OFFSET)) return 'vdi';
  return 'raw';
}

export function isCompression(format: ImageFormat): format is Compression {
  return format === 'gzip' || format === 'xz';
}

export function isConvertible(format: ImageFormat): format is ConvertibleFormat {
  return !isCompression(format) && format !== 'raw';
}

/** The format of what a compressed stream holds: a compressed archive inside another is not unpacked twice. */
export function innerFormat(head: Buffer): ConvertibleFormat | 'raw' {
  const format = detectFormat(head);
  return isCompression(format) ? 'raw' : format;
}
