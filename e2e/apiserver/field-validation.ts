/**
 * Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): fields a kind does not have
 * are dropped, and reported as a 400 (Strict) or as warnings (Warn, the default), worded as
 * kube-apiserver words them. Custom resources are checked in depth against their CRD schema, built-in
 * kinds in depth against upstream's API types (`builtin-schemas.ts`).
 */

import { builtinSchemas, kindDefinition, pruneObject } from './builtin-schemas.ts';
import { pruneAndDefaultCustomResource } from './crd-schema.ts';
import { badRequest } from './errors.ts';
import { isObject, type JsonObject } from './patch.ts';
import type { ResourceType } from './resources.ts';

/** What to do about unknown fields. */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';

/** Parses the `fieldValidation` query value; upstream's default is Warn. */
export function parseFieldValidation(value: string | null): FieldValidation {
  if (value === null || value === '') return 'Warn';
  if (value === 'Strict' || value === 'Warn' || value === 'Ignore') return value;
  throw badRequest(
    `fieldValidation: Unsupported value: "${value}": supported values: "Ignore", "Strict", "Warn"`,
  );
}

/**
 * Removes the fields `object` (the request's form of `resource`) may not have, in place, and returns
 * the warnings to send; with Strict, throws the 400 kube-apiserver answers instead.
 */
export function checkUnknownFields(
  resource: ResourceType,
  object: JsonObject,
  mode: FieldValidation,
): string[] {
  const unknown: string[] = [];
  if (resource.custom !== undefined) {
    unknown.push(...pruneAndDefaultCustomResource(object, resource.custom.schema));
    const metadata = builtinSchemas().definitions[OBJECT_META];
    if (isObject(object.metadata) && metadata !== undefined)
      pruneObject(object.metadata, metadata, 'metadata', unknown);
  } else {
    const definition = kindDefinition(resource.group, resource.version, resource.kind);
    if (definition !== undefined) pruneObject(object, definition, '', unknown);
  }
  if (unknown.length === 0 || mode === 'Ignore') return [];
  if (mode === 'Strict') {
    throw badRequest(
      `${resource.kind} in version "${resource.version}" cannot be handled as a ${resource.kind}: strict decoding error: ${unknown
        .map((f) => `unknown field "${f}"`)
        .join(', ')}`,
    );
  }
  return unknown.map((f) => `unknown field "${f}"`);
}
