// Field paths and status causes, in the form upstream's webhooks report them.

export type CauseType =
  | 'FieldValueInvalid'
  | 'FieldValueRequired'
  | 'FieldValueNotSupported'
  | 'FieldValueDuplicate'
  | 'FieldValueForbidden'
  | 'FieldValueNotFound';

export interface StatusCause {
  type: CauseType;
  message: string;
  field: string;
}

/** An immutable path such as `spec.domain.devices.disks[1].name`. */
export class FieldPath {
  private readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  child(...names: string[]): FieldPath {
    return new FieldPath([this.text, ...names].filter(Boolean).join('.'));
  }
  index(i: number): FieldPath {
    return new FieldPath(`${this.text}[${i}]`);
  }
  key(k: string): FieldPath {
    return new FieldPath(`${this.text}[${k}]`);
  }
  toString(): string {
    return this.text;
  }
}

export const path = (root: string) => new FieldPath(root);

export function cause(type: CauseType, field: FieldPath | string, message: string): StatusCause {
  return { type, field: String(field), message };
}
export const invalid = (field: FieldPath | string, message: string) => cause('FieldValueInvalid', field, message);
export const required = (field: FieldPath | string, message: string) => cause('FieldValueRequired', field, message);
export const notSupported = (field: FieldPath | string, message: string) => cause('FieldValueNotSupported', field, message);
export const duplicate = (field: FieldPath | string, message: string) => cause('FieldValueDuplicate', field, message);
export const forbidden = (field: FieldPath | string, message: string) => cause('FieldValueForbidden', field, message);
