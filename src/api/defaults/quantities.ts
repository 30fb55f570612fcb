// Rewrites every quantity in an object to Kubernetes' canonical form, as a Go
// webhook does when it serialises the defaulted object back ("1.5Gi" → "1536Mi").
import type { TSchema } from '@sinclair/typebox';
import { QUANTITY_FORMAT } from '../schema/builders.ts';
import { canonicalQuantity } from '../quantity.ts';

interface SchemaNode {
  'x-kvts-format'?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
}

export function canonicalizeQuantities<T>(schema: TSchema, value: T): T {
  return walk(schema as SchemaNode, value) as T;
}

function walk(schema: SchemaNode, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (schema['x-kvts-format'] === QUANTITY_FORMAT && (typeof value === 'string' || typeof value === 'number')) {
    try {
      return canonicalQuantity(value);
    } catch {
      return value; // validation reports malformed quantities
    }
  }
  if (Array.isArray(value)) return schema.items ? value.map((v) => walk(schema.items!, v)) : value;
  if (typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  for (const key of Object.keys(obj)) {
    const child = schema.properties?.[key] ?? extra;
    if (child) obj[key] = walk(child, obj[key]);
  }
  return obj;
}
