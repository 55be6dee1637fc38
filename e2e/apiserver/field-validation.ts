/**
 * Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): fields a kind does not have
 * are dropped, and reported as a 400 (Strict) or as warnings (Warn, the default), worded as
 * kube-apiserver words them. Custom resources are checked in depth against their CRD schema;
 * built-in kinds at the top level and in metadata only, as their full schemas are not held here.
 */

import { pruneAndDefaultCustomResource } from './crd-schema.ts';
import { badRequest } from './errors.ts';
import { isObject, type JsonObject } from './patch.ts';
import type { ResourceType } from './resources.ts';

/** What to do about unknown fields. */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

const OBJECT_META = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];

const SPEC_AND_STATUS = ['spec', 'status'];

/** Top-level fields of the built-in kinds besides apiVersion, kind and metadata, by `<group>/<kind>`. */
const TOP_LEVEL: Record<string, readonly string[]> = {
  '/Namespace': SPEC_AND_STATUS,
  '/Pod': SPEC_AND_STATUS,
  '/Service': SPEC_AND_STATUS,
  '/Node': SPEC_AND_STATUS,
  '/Endpoints': ['subsets'],
  '/ConfigMap': ['data', 'binaryData', 'immutable'],
  '/Secret': ['data', 'stringData', 'type', 'immutable'],
  '/Event': [
    'involvedObject',
    'reason',
    'message',
    'source',
    'firstTimestamp',
    'lastTimestamp',
    'count',
    'type',
    'eventTime',
    'series',
    'action',
    'related',
    'reportingComponent',
    'reportingInstance',
  ],
  '/ServiceAccount': ['secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
  'events.k8s.io/Event': [
    'eventTime',
    'series',
    'reportingController',
    'reportingInstance',
    'action',
    'reason',
    'regarding',
    'related',
    'note',
    'type',
    'deprecatedSource',
    'deprecatedFirstTimestamp',
    'deprecatedLastTimestamp',
    'deprecatedCount',
  ],
  'discovery.k8s.io/EndpointSlice': ['addressType', 'endpoints', 'ports'],
  'coordination.k8s.io/Lease': SPEC_AND_STATUS,
  'apps/Deployment': SPEC_AND_STATUS,
  'apps/ReplicaSet': SPEC_AND_STATUS,
  'admissionregistration.k8s.io/MutatingWebhookConfiguration': ['webhooks'],
  'admissionregistration.k8s.io/ValidatingWebhookConfiguration': ['webhooks'],
  'apiextensions.k8s.io/CustomResourceDefinition': SPEC_AND_STATUS,
};

/** Parses the `fieldValidation` query value; upstream's default is Warn. */
export function parseFieldValidation(value: string | null): FieldValidation {
  if (value === null || value === '') return 'Warn';
  if (value === 'Strict' || value === 'Warn' || value === 'Ignore') return value;
  throw badRequest(
    `fieldValidation: Unsupported value: "${value}": supported values: "Ignore", "Strict", "Warn"`,
  );
}

function dropUnknown(object: JsonObject, known: ReadonlySet<string>, prefix: string, into: string[]): void {
  for (const key of Object.keys(object)) {
    if (known.has(key)) continue;
    into.push(`${prefix}${key}`);
    delete object[key];
  }
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
  } else {
    const fields = TOP_LEVEL[`${resource.group}/${resource.kind}`];
    if (fields !== undefined)
      dropUnknown(object, new Set(['apiVersion', 'kind', 'metadata', ...fields]), '', unknown);
  }
  if (isObject(object.metadata)) dropUnknown(object.metadata, new Set(OBJECT_META), 'metadata.', unknown);
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
