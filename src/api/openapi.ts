// Turns a schema built with ./schema/builders.ts into the OpenAPI v3 subset
// that CRDs accept (a structural schema), and checks that subset the way
// kube-apiserver does before it stores a CRD.
import type { TSchema } from '@sinclair/typebox';

export interface JSONSchemaProps {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  anyOf?: JSONSchemaProps[];
  allOf?: JSONSchemaProps[];
  oneOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  nullable?: boolean;
  default?: unknown;
  $ref?: string;
  uniqueItems?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  [other: string]: unknown;
}

const COPIED_KEYS = [
  'type',
  'format',
  'description',
  'enum',
  'pattern',
  'minimum',
  'maximum',
  'nullable',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
] as const;

/** The CRD form of a schema: TypeBox's own bookkeeping and our private markers dropped, keys in stable order. */
export function toCrdSchema(schema: TSchema | JSONSchemaProps): JSONSchemaProps {
  const source = schema as JSONSchemaProps;
  const out: JSONSchemaProps = {};
  if (source.description) out.description = source.description;
  if (source.anyOf) out.anyOf = source.anyOf.map((s) => toCrdSchema(s));
  for (const key of COPIED_KEYS) {
    if (key === 'description') continue;
    if (source[key] !== undefined) (out as Record<string, unknown>)[key] = source[key];
  }
  if (source.items) out.items = toCrdSchema(source.items);
  if (source.additionalProperties && typeof source.additionalProperties === 'object') {
    out.additionalProperties = toCrdSchema(source.additionalProperties);
  }
  if (source.properties) {
    out.properties = {};
    for (const name of Object.keys(source.properties).sort()) {
      out.properties[name] = toCrdSchema(source.properties[name]);
    }
    if (source.required && source.required.length > 0) out.required = [...source.required].sort();
  }
  return out;
}

/**
 * Problems kube-apiserver would report for a CRD's openAPIV3Schema
 * (apiextensions' structural-schema and CRD validation rules), each with its path.
 */
export function structuralProblems(root: JSONSchemaProps): string[] {
  const problems: string[] = [];
  if (root.type !== 'object') problems.push('openAPIV3Schema.type: must be object at the root');
  walk(root, 'openAPIV3Schema', problems, { inJunctor: false, isRoot: true });
  const meta = root.properties?.metadata;
  if (meta) {
    const allowed = new Set(['name', 'generateName']);
    for (const key of Object.keys(meta.properties ?? {})) {
      if (!allowed.has(key)) problems.push(`openAPIV3Schema.properties[metadata].properties[${key}]: forbidden at the root`);
    }
    if (meta.type !== 'object') problems.push('openAPIV3Schema.properties[metadata].type: must be object');
  }
  return problems;
}

const JUNCTOR_FORBIDDEN = [
  'type',
  'description',
  'default',
  'additionalProperties',
  'nullable',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
] as const;

function walk(node: JSONSchemaProps, path: string, problems: string[], ctx: { inJunctor: boolean; isRoot: boolean }) {
  if (node.$ref) problems.push(`${path}.$ref: forbidden`);
  if (node.uniqueItems === true) problems.push(`${path}.uniqueItems: forbidden to be true`);
  if (node.additionalProperties === false) problems.push(`${path}.additionalProperties: must not be false`);
  if (node.properties && node.additionalProperties) {
    problems.push(`${path}.additionalProperties: properties and additionalProperties are mutually exclusive`);
  }
  if (ctx.inJunctor) {
    for (const key of JUNCTOR_FORBIDDEN) {
      // The one allowed exception: {type: integer}/{type: string} inside an int-or-string anyOf.
      if (key === 'type') continue;
      if (node[key] !== undefined) problems.push(`${path}.${key}: must not be specified inside anyOf/allOf/oneOf/not`);
    }
  } else {
    const intOrString = node['x-kubernetes-int-or-string'] === true;
    const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
    if (!node.type && !intOrString && !preserve)
      problems.push(`${path}.type: Required value: must not be empty for specified object fields`);
    if (intOrString) {
      if (node.type) problems.push(`${path}.type: must be empty with x-kubernetes-int-or-string`);
      const alts = node.anyOf ?? node.allOf?.flatMap((a) => a.anyOf ?? []) ?? [];
      const types = alts
        .map((a) => a.type)
        .sort()
        .join(',');
      if (alts.length > 0 && types !== 'integer,string') problems.push(`${path}.anyOf: int-or-string must be [integer, string]`);
    } else if (node.anyOf) {
      for (const alt of node.anyOf) if (alt.type) problems.push(`${path}.anyOf[*].type: must not be specified`);
    }
    if (node.type === 'array' && !node.items) problems.push(`${path}.items: Required value: must be specified for arrays`);
    if (node.type && !['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(node.type)) {
      problems.push(`${path}.type: Unsupported value: "${node.type}"`);
    }
    const listType = node['x-kubernetes-list-type'];
    if (listType) {
      if (node.type !== 'array') problems.push(`${path}.x-kubernetes-list-type: must only be used on arrays`);
      if (listType === 'map') {
        const keys = node['x-kubernetes-list-map-keys'] ?? [];
        if (keys.length === 0) problems.push(`${path}.x-kubernetes-list-map-keys: Required value with list-type map`);
        if (node.items?.type !== 'object') problems.push(`${path}.items.type: must be object with list-type map`);
        for (const key of keys) {
          const prop = node.items?.properties?.[key];
          if (!prop) problems.push(`${path}.x-kubernetes-list-map-keys: key ${key} is not a property of the items`);
          else if (!(node.items?.required ?? []).includes(key) && prop.default === undefined) {
            problems.push(`${path}.x-kubernetes-list-map-keys: key ${key} must be required or have a default`);
          }
        }
      } else if (listType === 'set' && node.items && !['string', 'integer', 'number', 'boolean'].includes(node.items.type ?? '')) {
        problems.push(`${path}.items.type: list-type set needs scalar items`);
      } else if (!['atomic', 'set', 'map'].includes(listType)) {
        problems.push(`${path}.x-kubernetes-list-type: Unsupported value "${listType}"`);
      }
    }
    const mapType = node['x-kubernetes-map-type'];
    if (mapType && (node.type !== 'object' || !['atomic', 'granular'].includes(mapType))) {
      problems.push(`${path}.x-kubernetes-map-type: must be atomic or granular on an object`);
    }
  }
  for (const key of node.required ?? []) {
    if (!node.properties?.[key]) problems.push(`${path}.required: ${key} is not a property`);
  }
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    walk(child, `${path}.properties[${name}]`, problems, { inJunctor: ctx.inJunctor, isRoot: false });
  }
  if (node.items) walk(node.items, `${path}.items`, problems, { inJunctor: ctx.inJunctor, isRoot: false });
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    walk(node.additionalProperties, `${path}.additionalProperties`, problems, { inJunctor: ctx.inJunctor, isRoot: false });
  }
  for (const junctor of ['anyOf', 'allOf', 'oneOf'] as const) {
    for (const [i, alt] of (node[junctor] ?? []).entries())
      walk(alt, `${path}.${junctor}[${i}]`, problems, { inJunctor: true, isRoot: false });
  }
  if (node.not) walk(node.not, `${path}.not`, problems, { inJunctor: true, isRoot: false });
}

/** The paths of fields kube-apiserver would prune from `value` under a structural schema. */
export function prunedPaths(schema: JSONSchemaProps, value: unknown, at = ''): string[] {
  if (value === null || typeof value !== 'object' || schema['x-kubernetes-preserve-unknown-fields']) return [];
  if (Array.isArray(value)) return schema.items ? value.flatMap((v, i) => prunedPaths(schema.items!, v, `${at}[${i}]`)) : [];
  const out: string[] = [];
  const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  for (const [key, child] of Object.entries(value)) {
    const sub = schema.properties?.[key] ?? extra;
    const here = at ? `${at}.${key}` : key;
    // kube-apiserver keeps a custom resource's own ObjectMeta whatever the schema says.
    if (!at && key === 'metadata') continue;
    if (!sub) out.push(here);
    else out.push(...prunedPaths(sub, child, here));
  }
  return out;
}
