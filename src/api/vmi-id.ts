// A VMI's stable identifier for label values, as upstream computes it: the
// name itself when it fits a label value, else a prefix plus a hash.
import { createHash } from 'node:crypto';

const LABEL_VALUE_MAX = 63;
const HASH_LENGTH = 8;

export function vmiId(name: string): string {
  if (name.length <= LABEL_VALUE_MAX) return name;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, HASH_LENGTH);
  return `${name.slice(0, LABEL_VALUE_MAX - HASH_LENGTH - 1)}-${hash}`;
}
