// Kubernetes' name rules (k8s.io/apimachinery validation), with its messages.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PORT_NAME_CHARS = /^[-a-z0-9]+$/;
const LETTER = /[a-z]/;

export function dns1123LabelErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 63) errors.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(value)) {
    errors.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return errors;
}

export function dns1123SubdomainErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 253) errors.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(value)) {
    errors.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  }
  return errors;
}

/** IANA_SVC_NAME, as IsValidPortName checks it. */
export function isValidPortName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 15 &&
    PORT_NAME_CHARS.test(name) &&
    LETTER.test(name) &&
    !name.includes('--') &&
    !name.startsWith('-') &&
    !name.endsWith('-')
  );
}

export function isIPv4(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function isIP(value: string): boolean {
  if (isIPv4(value)) return true;
  if (!/^[0-9a-fA-F:.]+$/.test(value) || !value.includes(':')) return false;
  const doubles = value.split('::').length - 1;
  if (doubles > 1) return false;
  const groups = value.split(':').filter((g) => g !== '');
  return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g) || isIPv4(g)) && (doubles === 1 ? groups.length < 8 : groups.length === 8);
}

/** Go's net.ParseMAC accepts 6, 8 or 20 octets separated by ':' or '-', or dotted groups of four hex digits. */
export function macOctets(value: string): number | undefined {
  if (/^([0-9a-fA-F]{2}[:-])+[0-9a-fA-F]{2}$/.test(value)) {
    const sep = value[2];
    if (
      value
        .split('')
        .filter((c) => c === ':' || c === '-')
        .some((c) => c !== sep)
    )
      return undefined;
    const n = value.split(sep).length;
    return [6, 8, 20].includes(n) ? n : undefined;
  }
  if (/^([0-9a-fA-F]{4}\.)+[0-9a-fA-F]{4}$/.test(value)) {
    const n = value.split('.').length * 2;
    return [6, 8, 20].includes(n) ? n : undefined;
  }
  return undefined;
}

/** PCI addresses as dddd:bb:ss.f */
export function isPciAddress(value: string): boolean {
  return /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]$/.test(value);
}
