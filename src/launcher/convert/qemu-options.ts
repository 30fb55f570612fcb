// How QEMU spells its options, for every concern alike.

export const MiB = 1024 * 1024;

/** QEMU's -opt key=value lists escape commas by doubling them. */
export const esc = (value: string) => value.replaceAll(',', ',,');

/** Escaped, or left out (by opts) when not set. */
export const escOptional = (value: string | undefined) => value && esc(value);

/** `first,key=value,...`, leaving out the fields that are not set. */
export const opts = (first: string, fields: Record<string, string | number | undefined>) =>
  [
    first,
    ...Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${k}=${v}`),
  ].join(',');

/**
 * The -device of a controller that devices share (USB, SCSI, AHCI): given the first time one
 * needs it, nothing when the argv so far (of earlier concerns or of this one) already has it.
 */
export function controllerOnce(device: string, id: string, ...argvSoFar: (readonly string[])[]): string[] {
  const arg = opts(device, { id });
  return argvSoFar.some((argv) => argv.includes(arg)) ? [] : ['-device', arg];
}
