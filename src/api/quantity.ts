// Kubernetes resource quantities ("128Mi", "1.5G", "100m", "1e3"): parsing,
// comparison and the canonical form Kubernetes writes them back in.

export type QuantityFormat = 'BinarySI' | 'DecimalSI' | 'DecimalExponent';

export interface Quantity {
  /** The value in nano-units, exact for every suffix Kubernetes accepts. */
  nanos: bigint;
  format: QuantityFormat;
}

const BINARY: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const DECIMAL_EXP: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const NANO = 1_000_000_000n;
const PATTERN = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

export class QuantityError extends Error {}

/** The range of Value() of a Kubernetes quantity: an int64. */
const MAX_VALUE_NANOS = ((1n << 63n) - 1n) * NANO;
const MIN_VALUE_NANOS = -(1n << 63n) * NANO;
const OUT_OF_RANGE = 'quantities must be within the range of a 64-bit integer';

function pow10(exp: number): bigint {
  return 10n ** BigInt(exp);
}

const digitCount = (n: bigint) => (n < 0n ? -n : n).toString().length;

/** Parses a quantity; numbers are taken as plain decimal values. */
export function parseQuantity(input: string | number): Quantity {
  // String() would round an integer beyond 2^53 to its shortest form: 2^63 - 1024 as 9223372036854775000.
  const text = typeof input === 'string' ? input.trim() : Number.isInteger(input) ? BigInt(input).toString() : String(input);
  const match = PATTERN.exec(text);
  if (!match) throw new QuantityError(`quantities must match the regular expression '${PATTERN.source}'`);
  const [, sign, digits, suffix = ''] = match;
  const [whole, frac = ''] = digits.split('.');
  // mantissa * 10^-frac.length is the number before the suffix.
  const mantissa = BigInt((whole || '0') + frac) * (sign === '-' ? -1n : 1n);
  const scale = frac.length;
  let nanos: bigint;
  let format: QuantityFormat;
  if (suffix in BINARY) {
    format = 'BinarySI';
    nanos = (mantissa * BINARY[suffix] * NANO) / pow10(scale);
  } else {
    let exp: number;
    if (/^[eE]/.test(suffix)) {
      format = 'DecimalExponent';
      exp = Number(suffix.slice(1));
    } else {
      format = 'DecimalSI';
      exp = DECIMAL_EXP[suffix];
    }
    const shift = exp + 9 - scale;
    if (mantissa === 0n) nanos = 0n;
    // Weighed before any power of ten is built: "1e999999999" would be a billion-digit number.
    else if (digitCount(mantissa) + shift > digitCount(MAX_VALUE_NANOS)) throw new QuantityError(OUT_OF_RANGE);
    else if (shift >= 0) nanos = mantissa * pow10(shift);
    // Kubernetes rounds sub-nano precision up; values that small never occur in a VM spec.
    else if (-shift > digitCount(mantissa)) nanos = mantissa > 0n ? 1n : 0n;
    else nanos = ceilDiv(mantissa, pow10(-shift));
  }
  if (nanos > MAX_VALUE_NANOS || nanos < MIN_VALUE_NANOS) throw new QuantityError(OUT_OF_RANGE);
  return { nanos, format };
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b > 0n ? q + 1n : q;
}

/** The integer value, rounded up as resource.Quantity.Value() does. */
export function quantityValue(q: Quantity | string | number): number {
  const parsed = typeof q === 'object' ? q : parseQuantity(q);
  return Number(ceilDiv(parsed.nanos, NANO));
}

export function compareQuantities(a: string | number, b: string | number): number {
  const x = parseQuantity(a).nanos;
  const y = parseQuantity(b).nanos;
  return x === y ? 0 : x < y ? -1 : 1;
}

export function isZeroQuantity(q: string | number | undefined): boolean {
  return q === undefined || parseQuantity(q).nanos === 0n;
}

/** The string Kubernetes serialises a quantity as (resource.Quantity.String()). */
export function formatQuantity(q: Quantity): string {
  const { nanos, format } = q;
  if (nanos === 0n) return '0';
  const sign = nanos < 0n ? '-' : '';
  const abs = nanos < 0n ? -nanos : nanos;
  if (format === 'BinarySI' && abs % NANO === 0n) {
    let value = abs / NANO;
    if (value >= 1024n) {
      const suffixes = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
      let i = 0;
      while (i < suffixes.length - 1 && value % 1024n === 0n) {
        value /= 1024n;
        i++;
      }
      return `${sign}${value}${suffixes[i]}`;
    }
  }
  // Decimal: the largest exponent (a multiple of 3, from nano up) that leaves an integer mantissa.
  let mantissa = abs;
  let exp = -9;
  while (mantissa % 1000n === 0n && exp < 18) {
    mantissa /= 1000n;
    exp += 3;
  }
  if (format === 'DecimalExponent') return `${sign}${mantissa}${exp === 0 ? '' : `e${exp}`}`;
  const suffix = Object.entries(DECIMAL_EXP).find(([, e]) => e === exp)?.[0] ?? '';
  return `${sign}${mantissa}${suffix}`;
}

export function canonicalQuantity(input: string | number): string {
  return formatQuantity(parseQuantity(input));
}

/** A quantity of bytes in BinarySI form, as resource.NewQuantity(v, BinarySI) prints it. */
export function binaryQuantity(bytes: number | bigint): string {
  return formatQuantity({ nanos: BigInt(bytes) * NANO, format: 'BinarySI' });
}
