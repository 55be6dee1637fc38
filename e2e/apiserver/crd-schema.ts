/**
 * What kube-apiserver does with a custom resource's structural OpenAPI v3 schema: prunes fields the
 * schema does not know, fills in defaults, and validates types, enums, bounds, patterns, required
 * fields and list uniqueness, with causes worded as upstream words them. CEL rules
 * (x-kubernetes-validations) and formats are not checked.
 */

import type { StatusCause } from './errors.ts';
import { isObject, type JsonObject, jsonEqual } from './patch.ts';

/** The schema keywords used here (a subset of a CRD's openAPIV3Schema). */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

function asSchema(value: unknown): Schema | undefined {
  return isObject(value) ? (value as Schema) : undefined;
}

/** The root fields every object keeps whatever its schema says. */
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

function prunesUnknown(schema: Schema): boolean {
  return schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties === undefined;
}

/**
 * Drops unknown fields (recording their paths in `pruned`) and nulls of non-nullable fields, then
 * fills defaults, in place.
 */
function pruneAndDefault(
  value: unknown,
  schema: Schema | undefined,
  path: string,
  pruned: string[],
): unknown {
  if (!schema) return value;
  const root = path === '';
  if (isObject(value)) {
    const properties = schema.properties ?? {};
    for (const [key, child] of Object.entries(value)) {
      if (root && ROOT_FIELDS.has(key)) continue;
      const childPath = root ? key : `${path}.${key}`;
      const childSchema = properties[key] ?? asSchema(schema.additionalProperties);
      if (
        properties[key] === undefined &&
        schema.additionalProperties === undefined &&
        prunesUnknown(schema)
      ) {
        pruned.push(childPath);
        delete value[key];
        continue;
      }
      if (child === null && childSchema?.nullable !== true && childSchema !== undefined) {
        delete value[key];
        continue;
      }
      value[key] = pruneAndDefault(child, childSchema, childPath, pruned);
    }
    for (const [key, childSchema] of Object.entries(properties)) {
      if (value[key] === undefined && childSchema.default !== undefined) {
        const childPath = root ? key : `${path}.${key}`;
        value[key] = pruneAndDefault(
          JSON.parse(JSON.stringify(childSchema.default)),
          childSchema,
          childPath,
          pruned,
        );
      }
    }
    return value;
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => pruneAndDefault(item, schema.items, `${path}[${i}]`, pruned));
  }
  return value;
}

/**
 * Prunes and defaults a custom resource in place per its CRD version's schema (metadata, apiVersion
 * and kind are always kept), as upstream does when it decodes a request. Returns the paths of the
 * fields it dropped, for field validation.
 */
export function pruneAndDefaultCustomResource(object: JsonObject, schema: unknown): string[] {
  const root = asSchema(schema);
  const pruned: string[] = [];
  if (root) pruneAndDefault(object, root, '', pruned);
  return pruned;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(value: unknown, schema: Schema): boolean {
  if (schema['x-kubernetes-int-or-string']) return typeof value === 'string' || Number.isInteger(value);
  const actual = typeOf(value);
  if (schema.type === undefined) return true;
  if (schema.type === 'number') return actual === 'number' || actual === 'integer';
  return actual === schema.type;
}

function invalidValue(field: string, value: unknown, why: string): StatusCause {
  return { reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: ${why}` };
}

function validate(value: unknown, schema: Schema, path: string, causes: StatusCause[]): void {
  if (value === null && schema.nullable) return;
  if (!typeMatches(value, schema)) {
    causes.push(
      invalidValue(
        path,
        typeOf(value),
        `${path} in body must be of type ${schema.type}: ${JSON.stringify(typeOf(value))}`,
      ),
    );
    return;
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => jsonEqual(e, value))) {
    causes.push({
      reason: 'FieldValueNotSupported',
      field: path,
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`,
    });
  }
  if (typeof value === 'number') {
    if (
      schema.minimum !== undefined &&
      (value < schema.minimum || (schema.exclusiveMinimum && value === schema.minimum))
    ) {
      causes.push(
        invalidValue(
          path,
          value,
          `${path} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`,
        ),
      );
    }
    if (
      schema.maximum !== undefined &&
      (value > schema.maximum || (schema.exclusiveMaximum && value === schema.maximum))
    ) {
      causes.push(
        invalidValue(
          path,
          value,
          `${path} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`,
        ),
      );
    }
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      causes.push(
        invalidValue(path, value, `${path} in body should be at least ${schema.minLength} chars long`),
      );
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      causes.push({
        reason: 'FieldValueTooLong',
        field: path,
        message: `Too long: may not be more than ${schema.maxLength} bytes`,
      });
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      causes.push(invalidValue(path, value, `${path} in body should match '${schema.pattern}'`));
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      causes.push(
        invalidValue(path, value.length, `${path} in body should have at least ${schema.minItems} items`),
      );
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      causes.push({
        reason: 'FieldValueTooMany',
        field: path,
        message: `Too many: ${value.length}: must have at most ${schema.maxItems} items`,
      });
    }
    const listType = schema['x-kubernetes-list-type'];
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    value.forEach((item, i) => {
      const earlier = value.slice(0, i);
      const duplicate =
        listType === 'set'
          ? earlier.some((e) => jsonEqual(e, item))
          : listType === 'map' && isObject(item)
            ? earlier.some((e) => isObject(e) && keys.every((k) => jsonEqual(e[k], item[k])))
            : false;
      if (duplicate) {
        const shown =
          listType === 'map' && isObject(item) ? Object.fromEntries(keys.map((k) => [k, item[k]])) : item;
        causes.push({
          reason: 'FieldValueDuplicate',
          field: `${path}[${i}]`,
          message: `Duplicate value: ${JSON.stringify(shown)}`,
        });
      }
      if (schema.items) validate(item, schema.items, `${path}[${i}]`, causes);
    });
  }
  if (isObject(value)) {
    for (const field of schema.required ?? []) {
      if (value[field] === undefined)
        causes.push({
          reason: 'FieldValueRequired',
          field: path === '' ? field : `${path}.${field}`,
          message: 'Required value',
        });
    }
    const count = Object.keys(value).length;
    if (schema.minProperties !== undefined && count < schema.minProperties) {
      causes.push(
        invalidValue(path, count, `${path} in body should have at least ${schema.minProperties} properties`),
      );
    }
    if (schema.maxProperties !== undefined && count > schema.maxProperties) {
      causes.push(
        invalidValue(path, count, `${path} in body should have at most ${schema.maxProperties} properties`),
      );
    }
    for (const [key, child] of Object.entries(value)) {
      if (path === '' && ROOT_FIELDS.has(key)) continue;
      const childSchema = schema.properties?.[key] ?? asSchema(schema.additionalProperties);
      if (childSchema) validate(child, childSchema, path === '' ? key : `${path}.${key}`, causes);
    }
  }
}

/** Causes for a custom resource that its CRD version's schema rejects. */
export function validateCustomResource(object: JsonObject, schema: unknown): StatusCause[] {
  const root = asSchema(schema);
  if (!root) return [];
  const causes: StatusCause[] = [];
  validate(object, root, '', causes);
  return causes;
}
