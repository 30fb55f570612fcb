// Schema builders: each call yields a JSON schema (for the CRDs) whose static
// type is the TypeScript type of the field, so the API types and the CRD
// schemas come from one definition and cannot drift apart.
import { Type, type TSchema, type TProperties, type ObjectOptions, type Static } from '@sinclair/typebox';

export { Type, type Static, type TSchema };

export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** Marks schemas whose values are Kubernetes quantities, so defaulting can canonicalise them. */
export const QUANTITY_FORMAT = 'quantity';

export const Str = (description?: string) => Type.String(description ? { description } : {});
/** A string of a closed set, as upstream's `+kubebuilder:validation:Enum` fields. */
export const StrEnum = <V extends string>(...values: V[]) => Type.Unsafe<V>({ type: 'string', enum: values });
export const Bool = (description?: string) => Type.Boolean(description ? { description } : {});
export const Int32 = (description?: string) => Type.Integer({ format: 'int32', ...(description ? { description } : {}) });
export const Int64 = (description?: string) => Type.Integer({ format: 'int64', ...(description ? { description } : {}) });
export const Time = () => Type.Unsafe<string>({ type: 'string', format: 'date-time', nullable: true });
export const Duration = () => Type.Unsafe<string>({ type: 'string' });
export const Opt = Type.Optional;

export function Quantity(description?: string) {
  return Type.Unsafe<string | number>({
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    'x-kubernetes-int-or-string': true,
    'x-kvts-format': QUANTITY_FORMAT,
    ...(description ? { description } : {}),
  });
}

export function IntOrString(description?: string) {
  return Type.Unsafe<string | number>({
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
    ...(description ? { description } : {}),
  });
}

export function MapOf<S extends TSchema>(values: S) {
  return Type.Unsafe<Record<string, Static<S>>>({ type: 'object', additionalProperties: values });
}
export const StringMap = () => MapOf(Type.String());
export const QuantityMap = () => MapOf(Quantity());

export function Obj<P extends TProperties>(properties: P, options: ObjectOptions = {}) {
  return Type.Object(properties, options);
}

/** An object upstream defines as an empty struct: `{}` switches a feature on. */
export const Empty = () => Type.Object({});

export function Arr<S extends TSchema>(items: S, listType?: 'atomic' | 'set' | { mapKeys: string[] }) {
  const extra: Record<string, unknown> = {};
  if (listType === 'atomic' || listType === 'set') extra['x-kubernetes-list-type'] = listType;
  else if (listType) {
    extra['x-kubernetes-list-type'] = 'map';
    extra['x-kubernetes-list-map-keys'] = listType.mapKeys;
  }
  return Type.Array(items, extra);
}
export const StrList = () => Arr(Type.String());

/** A subtree kept as given: used only where upstream's own CRD keeps it so. */
export function Unstructured(description?: string) {
  return Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    ...(description ? { description } : {}),
  });
}
