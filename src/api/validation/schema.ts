// Structural validation of a whole object against its kind's CRD schema, as
// upstream's webhooks start with (ValidateSchema) before any defaulting or
// semantic check: a wrong type, a missing required field or a malformed
// quantity is reported with its path. Mutating webhooks run before
// kube-apiserver applies the schema, so without this the defaulting would meet
// a string where it walks an object. Unknown fields are left alone: kube-apiserver
// prunes them before any webhook sees the object.
import { CRDS, objectSchema } from '../crds.ts';
import type { JSONSchemaProps } from '../openapi.ts';
import { QUANTITY_PATTERN } from '../schema/builders.ts';
import { FieldPath, invalid, required, type StatusCause } from '../causes.ts';
import { parseQuantity } from '../quantity.ts';

const STRING: JSONSchemaProps = { type: 'string' };
const STRING_MAP: JSONSchemaProps = { type: 'object', additionalProperties: STRING };

/**
 * What upstream's Go types make of every `metadata`, the object's own and the
 * ones templates embed (which the CRD keeps without a schema).
 */
const OBJECT_META: JSONSchemaProps = {
  type: 'object',
  nullable: true,
  properties: {
    name: STRING,
    generateName: STRING,
    namespace: STRING,
    uid: STRING,
    resourceVersion: STRING,
    selfLink: STRING,
    generation: { type: 'integer' },
    creationTimestamp: { type: 'string', nullable: true },
    deletionTimestamp: { type: 'string', nullable: true },
    deletionGracePeriodSeconds: { type: 'integer' },
    labels: STRING_MAP,
    annotations: STRING_MAP,
    finalizers: { type: 'array', items: STRING },
    ownerReferences: {
      type: 'array',
      items: {
        type: 'object',
        required: ['apiVersion', 'kind', 'name', 'uid'],
        properties: {
          apiVersion: STRING,
          kind: STRING,
          name: STRING,
          uid: STRING,
          controller: { type: 'boolean' },
          blockOwnerDeletion: { type: 'boolean' },
        },
      },
    },
    managedFields: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
  },
};

const INT64_LIMIT = 2 ** 63;

/** The JSON type of a value, named as go-openapi names it in its messages. */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** An integer that decodes into a Go int64 (larger JSON numbers become floats). */
const isInteger = (value: number) => Number.isInteger(value) && value >= -INT64_LIMIT && value < INT64_LIMIT;

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return typeof value === 'number' && isInteger(value);
    case 'number':
      return typeof value === 'number';
    default:
      return typeof value === type;
  }
}

const patterns = new Map<string, RegExp>();

function matches(pattern: string, value: string): boolean {
  let regex = patterns.get(pattern);
  if (!regex) patterns.set(pattern, (regex = new RegExp(pattern)));
  return regex.test(value);
}

function check(schema: JSONSchemaProps, value: unknown, field: FieldPath, causes: StatusCause[]): void {
  const types = schema['x-kubernetes-int-or-string'] ? ['integer', 'string'] : schema.type ? [schema.type] : [];
  // A Go webhook decodes a quantity from any JSON number (2.2 is 2200m), and its mutator writes it back as a string.
  const quantityNumber = schema.pattern === QUANTITY_PATTERN && typeof value === 'number' && Number.isFinite(value);
  const typed = value === null ? schema.nullable : quantityNumber || types.length === 0 || types.some((type) => hasType(value, type));
  if (!typed) {
    causes.push(invalid(field, `${field} in body must be of type ${types.join(',')}: "${jsonType(value)}"`));
  } else if (schema.enum && !schema.enum.includes(value)) {
    causes.push(invalid(field, `${field} in body should be one of [${schema.enum.join(' ')}]`));
  } else if (typeof value === 'string') {
    if (schema.pattern) checkPattern(schema.pattern, value, field, causes);
  } else if (Array.isArray(value)) {
    if (schema.items) for (const [i, item] of value.entries()) check(schema.items, item, field.index(i), causes);
  } else if (typeof value === 'object' && value !== null) {
    checkProperties(schema, value as Record<string, unknown>, field, causes);
  }
}

function checkPattern(pattern: string, value: string, field: FieldPath, causes: StatusCause[]) {
  if (!matches(pattern, value)) {
    causes.push(invalid(field, `${field} in body should match '${pattern}'`));
    return;
  }
  if (pattern !== QUANTITY_PATTERN) return;
  // The CRD's pattern is looser than the parser a Go webhook decodes a quantity with.
  try {
    parseQuantity(value);
  } catch (error) {
    causes.push(invalid(field, `${field} '${value}': ${(error as Error).message}`));
  }
}

function checkProperties(schema: JSONSchemaProps, obj: Record<string, unknown>, field: FieldPath, causes: StatusCause[]) {
  for (const key of schema.required ?? []) {
    if (obj[key] === undefined) causes.push(required(field.child(key), `${field.child(key)} in body is required`));
  }
  const properties = schema.properties ?? {};
  const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  for (const [key, child] of Object.entries(obj)) {
    if (child === undefined) continue;
    if (Object.hasOwn(properties, key)) check(key === 'metadata' ? OBJECT_META : properties[key], child, field.child(key), causes);
    // Map keys go in brackets, as Kubernetes writes field paths.
    else if (extra) check(extra, child, field.key(key), causes);
  }
}

const schemas = new Map<string, JSONSchemaProps>();

function schemaOf(kind: string): JSONSchemaProps {
  let schema = schemas.get(kind);
  if (!schema) {
    const def = CRDS.find((d) => d.kind === kind);
    if (!def) throw new Error(`no CRD for kind ${kind}`);
    schema = objectSchema(def);
    schemas.set(kind, schema);
  }
  return schema;
}

/** Every place an object of `kind` departs from its CRD schema, each with its field path. */
export function validateSchema(kind: string, object: unknown): StatusCause[] {
  const causes: StatusCause[] = [];
  check(schemaOf(kind), object, new FieldPath(''), causes);
  return causes;
}
