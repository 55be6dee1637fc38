/**
 * OpenAPI v3 documents of the served resource types: the index at /openapi/v3 and one document per
 * group-version at /openapi/v3/api/v1 and /openapi/v3/apis/<group>/<version>.
 *
 * kubectl reads them for three things, and each shapes part of the document:
 * - `apply`/`create` validation: kubectl looks for a PATCH operation tagged with the object's
 *   `x-kubernetes-group-version-kind` and, among that operation's own query parameters, for
 *   `fieldValidation`; when it is there kubectl leaves validation to the server.
 * - `explain`: the component schema carrying the kind's `x-kubernetes-group-version-kind`.
 * - client-side `apply`: a PATCH operation accepting `application/strategic-merge-patch+json` makes
 *   kubectl compute the strategic merge patch from these schemas' merge keys. The built-in schemas
 *   here do not spell out merge keys, so their PATCH operations leave that content type out and
 *   kubectl uses the merge keys compiled into it instead, which are upstream's own. Custom
 *   resources get JSON merge patches, as upstream.
 *
 * The built-in kinds are described field by field from upstream's API types (`builtin-schemas.ts`,
 * so `kubectl explain` answers for every kind), with the hand-written Service schemas below laid over
 * them for their merge keys and list types; custom resources use their CRD's schema.
 */

import { createHash } from 'node:crypto';
import { builtinSchemas, type FieldSchema } from './builtin-schemas.ts';
import { apiVersionOf, groupVersionPath, type ResourceType } from './resources.ts';

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const CORE = 'io.k8s.api.core.v1';

type Schema = Record<string, unknown>;

function ref(name: string): Schema {
  return { $ref: `#/components/schemas/${name}` };
}

/**
 * The component-schema name prefix of a group-version, as upstream derives it from Go package paths
 * (io.k8s.api.core.v1, io.k8s.api.apps.v1) or, for custom resources, from the reversed group name.
 */
export function schemaPrefix(group: string, version: string): string {
  if (group === '') return `io.k8s.api.core.${version}`;
  if (group === 'apiextensions.k8s.io')
    return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${version}`;
  if (group === 'apps') return `io.k8s.api.apps.${version}`;
  if (group.endsWith('.k8s.io')) return `io.k8s.api.${group.slice(0, -'.k8s.io'.length)}.${version}`;
  return `${group.split('.').reverse().join('.')}.${version}`;
}

function stringMap(description: string): Schema {
  return { type: 'object', additionalProperties: { type: 'string', default: '' }, description };
}

/** apimachinery meta/v1 types every group-version document refers to. */
function metaSchemas(): Record<string, Schema> {
  const time = { type: 'string', format: 'date-time' };
  return {
    [`${META}.ObjectMeta`]: {
      type: 'object',
      description:
        'Metadata every stored object carries: identity, labels, annotations, ownership and lifecycle.',
      properties: {
        name: {
          type: 'string',
          description: "The object's name, unique among objects of its kind in its namespace.",
        },
        generateName: {
          type: 'string',
          description:
            'An optional prefix used by the server to generate a unique name when name is not set.',
        },
        namespace: {
          type: 'string',
          description: 'The namespace the object lives in; empty for cluster-scoped objects.',
        },
        uid: {
          type: 'string',
          description: 'Identifies this incarnation of the object; set by the server on create.',
        },
        resourceVersion: {
          type: 'string',
          description:
            'An opaque value that changes on every write, used for optimistic concurrency and watches.',
        },
        generation: {
          type: 'integer',
          format: 'int64',
          description: 'Incremented on changes of the desired state.',
        },
        creationTimestamp: { ...time, description: 'When the object was created.' },
        deletionTimestamp: {
          ...time,
          description: 'When the object will be deleted; set when deletion was requested.',
        },
        deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
        labels: stringMap('Key/value pairs that selectors (of Services, Deployments, webhooks) match.'),
        annotations: stringMap('Key/value pairs for tools and people; never used to select objects.'),
        finalizers: {
          type: 'array',
          items: { type: 'string', default: '' },
          description:
            'Keys that hold off the final removal of a deleted object until their owners clear them.',
          'x-kubernetes-list-type': 'set',
          'x-kubernetes-patch-strategy': 'merge',
        },
        ownerReferences: {
          type: 'array',
          items: ref(`${META}.OwnerReference`),
          description: 'Objects this object depends on; it is garbage collected when they are all gone.',
          'x-kubernetes-list-map-keys': ['uid'],
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-patch-merge-key': 'uid',
          'x-kubernetes-patch-strategy': 'merge',
        },
        managedFields: {
          type: 'array',
          items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
      },
    },
    [`${META}.OwnerReference`]: {
      type: 'object',
      required: ['apiVersion', 'kind', 'name', 'uid'],
      properties: {
        apiVersion: { type: 'string', default: '' },
        kind: { type: 'string', default: '' },
        name: { type: 'string', default: '' },
        uid: { type: 'string', default: '' },
        controller: { type: 'boolean' },
        blockOwnerDeletion: { type: 'boolean' },
      },
      'x-kubernetes-map-type': 'atomic',
    },
    [`${META}.ListMeta`]: {
      type: 'object',
      properties: {
        resourceVersion: { type: 'string' },
        continue: { type: 'string' },
        remainingItemCount: { type: 'integer', format: 'int64' },
      },
    },
    [`${META}.Status`]: {
      type: 'object',
      description: 'The body of an error, or of a call that has no object to return.',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { allOf: [ref(`${META}.ListMeta`)], default: {} },
        status: { type: 'string' },
        message: { type: 'string' },
        reason: { type: 'string' },
        details: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        code: { type: 'integer', format: 'int32' },
      },
      'x-kubernetes-group-version-kind': [{ group: '', version: 'v1', kind: 'Status' }],
    },
    [`${META}.DeleteOptions`]: {
      type: 'object',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        dryRun: { type: 'array', items: { type: 'string', default: '' }, 'x-kubernetes-list-type': 'atomic' },
        gracePeriodSeconds: { type: 'integer', format: 'int64' },
        orphanDependents: { type: 'boolean' },
        propagationPolicy: { type: 'string' },
        preconditions: {
          type: 'object',
          properties: { resourceVersion: { type: 'string' }, uid: { type: 'string' } },
        },
      },
    },
    [`${META}.Patch`]: {
      type: 'object',
      description: 'A PATCH request body, in the format its content type names.',
    },
    [`${META}.WatchEvent`]: {
      type: 'object',
      required: ['type', 'object'],
      properties: {
        type: { type: 'string', default: '' },
        object: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
    },
  };
}

function gvk(group: string, version: string, kind: string): Schema[] {
  return [{ group, version, kind }];
}

/** An OpenAPI v3 schema of a field of a built-in kind; references go to components, as upstream's do. */
function openApiField(field: FieldSchema): Schema {
  const described = field.description === undefined ? {} : { description: field.description };
  if (field.$ref !== undefined) return { allOf: [ref(field.$ref)], ...described };
  if (field['x-kubernetes-int-or-string']) return { allOf: [ref(INT_OR_STRING)], ...described };
  if (field['x-kubernetes-preserve-unknown-fields'])
    return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, ...described };
  if (field.type === 'array') return { type: 'array', items: openApiField(field.items ?? {}), ...described };
  if (field.additionalProperties !== undefined)
    return { type: 'object', additionalProperties: openApiField(field.additionalProperties), ...described };
  return field.type === undefined ? { ...described } : { type: field.type, ...described };
}

/**
 * Adds the component schema of the built-in definition `name` and of every definition it refers
 * to; components already present (the hand-written meta types) are kept.
 */
function addBuiltinComponents(name: string, schemas: Record<string, Schema>): void {
  if (schemas[name] !== undefined) return;
  const definition = builtinSchemas().definitions[name];
  if (definition === undefined) return;
  const properties: Schema = {};
  const schema: Schema = { type: 'object', properties };
  if (definition.description !== undefined) schema.description = definition.description;
  if (definition.required !== undefined) schema.required = definition.required;
  schemas[name] = schema;
  const visit = (field: FieldSchema): void => {
    if (field.$ref !== undefined) addBuiltinComponents(field.$ref, schemas);
    if (field.items !== undefined) visit(field.items);
    if (field.additionalProperties !== undefined) visit(field.additionalProperties);
    if (field['x-kubernetes-int-or-string'] && schemas[INT_OR_STRING] === undefined)
      schemas[INT_OR_STRING] = INT_OR_STRING_SCHEMA;
  };
  for (const [field, fieldSchema] of Object.entries(definition.properties)) {
    properties[field] = openApiField(fieldSchema);
    visit(fieldSchema);
  }
}

/**
 * The schema of one built-in kind from upstream's API types (with the components it refers to added
 * to `schemas`), or undefined when the kind is not described there.
 */
function builtinKindSchema(resource: ResourceType, schemas: Record<string, Schema>): Schema | undefined {
  const name = builtinSchemas().kinds[`${resource.group}/${resource.version}/${resource.kind}`];
  if (name === undefined) return undefined;
  addBuiltinComponents(name, schemas);
  const schema = schemas[name];
  if (schema === undefined) return undefined;
  schema['x-kubernetes-group-version-kind'] = gvk(resource.group, resource.version, resource.kind);
  return schema;
}

/**
 * Lays the hand-written schemas over the generated ones: their extensions (merge keys, list types)
 * and their fields win, the generated fields they do not mention stay.
 */
function overlay(schemas: Record<string, Schema>, handWritten: Record<string, Schema>): void {
  for (const [name, schema] of Object.entries(handWritten)) {
    const generated = schemas[name];
    const generatedProperties = generated?.properties as Schema | undefined;
    const ownProperties = schema.properties as Schema | undefined;
    schemas[name] =
      generatedProperties === undefined || ownProperties === undefined
        ? schema
        : { ...generated, ...schema, properties: { ...generatedProperties, ...ownProperties } };
  }
}

/** The schema of one kind: its CRD's schema for custom resources, an open-ended one for built-ins. */
function kindSchema(resource: ResourceType): Schema {
  const gvkExtension = gvk(resource.group, resource.version, resource.kind);
  const envelope = {
    apiVersion: {
      type: 'string',
      description: 'The group and version of the schema the object is written in.',
    },
    kind: {
      type: 'string',
      description: 'The kind of object, in CamelCase.',
    },
    metadata: {
      allOf: [ref(`${META}.ObjectMeta`)],
      default: {},
      description: 'Name, namespace, labels and the other fields every object has.',
    },
  };
  if (resource.custom !== undefined) {
    const declared =
      typeof resource.custom.schema === 'object' && resource.custom.schema !== null
        ? (resource.custom.schema as Schema)
        : {};
    const declaredProperties =
      typeof declared.properties === 'object' && declared.properties !== null
        ? (declared.properties as Schema)
        : {};
    // Upstream publishes custom resources with the standard envelope in place of whatever the CRD
    // says about apiVersion, kind and metadata (a CRD may only constrain metadata.name/generateName).
    return {
      type: 'object',
      ...declared,
      properties: { ...declaredProperties, ...envelope },
      'x-kubernetes-group-version-kind': gvkExtension,
    };
  }
  const properties: Schema = { ...envelope };
  if (resource.group === '' && resource.plural === 'services') {
    properties.spec = {
      allOf: [ref(`${CORE}.ServiceSpec`)],
      default: {},
      description:
        'Spec defines the behavior of the Service: its ports, how it selects backends and how it is exposed.',
    };
    properties.status = {
      allOf: [ref(`${CORE}.ServiceStatus`)],
      default: {},
      description: 'Most recently observed status of the Service, written through the /status subresource.',
    };
  } else if (
    resource.plural !== 'configmaps' &&
    resource.plural !== 'secrets' &&
    resource.plural !== 'events'
  ) {
    properties.spec = {
      type: 'object',
      description: `Spec defines the desired behavior of the ${resource.kind}.`,
      'x-kubernetes-preserve-unknown-fields': true,
    };
  }
  if (resource.status && properties.status === undefined) {
    properties.status = {
      type: 'object',
      description: `Most recently observed status of the ${resource.kind}, written through the /status subresource.`,
      'x-kubernetes-preserve-unknown-fields': true,
    };
  }
  return {
    type: 'object',
    description: `${resource.kind} (${apiVersionOf(resource)}) as served by the local Portico API server.`,
    properties,
    // Kinds keep their other top-level fields (data, subsets, endpoints, webhooks, ...) open here.
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-group-version-kind': gvkExtension,
  };
}

const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const INT_OR_STRING_SCHEMA: Schema = {
  type: 'string',
  format: 'int-or-string',
  'x-kubernetes-int-or-string': true,
  description: 'A number or a string: a port number or name, a percentage, a quantity.',
};

function described(schema: Schema, description: string): Schema {
  return { ...schema, description };
}

const STRING: Schema = { type: 'string' };
const PORT_NUMBER: Schema = { type: 'integer', format: 'int32' };
const STRING_LIST: Schema = {
  type: 'array',
  items: { type: 'string', default: '' },
  'x-kubernetes-list-type': 'atomic',
};

/**
 * The Service's own types, typed field by field because Services are what Portico is about and
 * `kubectl explain service.spec.ports` should answer. Both stay open to fields added upstream later.
 */
function serviceSchemas(): Record<string, Schema> {
  return {
    [`${CORE}.ServiceSpec`]: {
      type: 'object',
      description: 'What the user asks of a Service.',
      'x-kubernetes-preserve-unknown-fields': true,
      properties: {
        type: described(
          STRING,
          'How the Service is exposed: ClusterIP (default), NodePort, LoadBalancer or ExternalName.',
        ),
        selector: {
          type: 'object',
          additionalProperties: { type: 'string', default: '' },
          'x-kubernetes-map-type': 'atomic',
          description:
            'Pods with these labels are the backends of the Service. Without a selector, endpoints are written by hand.',
        },
        ports: {
          type: 'array',
          items: { allOf: [ref(`${CORE}.ServicePort`)], default: {} },
          description: 'The ports the Service exposes. With more than one port, every port needs a name.',
          'x-kubernetes-list-map-keys': ['port', 'protocol'],
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-patch-merge-key': 'port',
          'x-kubernetes-patch-strategy': 'merge',
        },
        clusterIP: described(
          STRING,
          'The virtual IP of the Service; allocated when unset, "None" for a headless Service. Immutable once set.',
        ),
        clusterIPs: described(
          STRING_LIST,
          'The cluster IPs of the Service, one per IP family; the first equals clusterIP.',
        ),
        ipFamilies: described(STRING_LIST, 'IPv4 and/or IPv6, in the order of clusterIPs.'),
        ipFamilyPolicy: described(STRING, 'SingleStack, PreferDualStack or RequireDualStack.'),
        externalIPs: described(
          STRING_LIST,
          'Addresses, not managed by Kubernetes, on which nodes also accept traffic for the Service.',
        ),
        externalName: described(STRING, 'The DNS name an ExternalName Service is an alias (CNAME) for.'),
        externalTrafficPolicy: described(
          STRING,
          'Cluster (default) spreads external traffic over all endpoints; Local keeps it on the receiving node and preserves the client address.',
        ),
        internalTrafficPolicy: described(
          STRING,
          'Cluster (default) or Local: whether traffic from inside the cluster may leave the node it started on.',
        ),
        healthCheckNodePort: described(
          PORT_NUMBER,
          'The node port answering health checks of a LoadBalancer Service with externalTrafficPolicy Local.',
        ),
        loadBalancerIP: described(STRING, 'Deprecated: the address a LoadBalancer Service asks for.'),
        loadBalancerSourceRanges: described(
          STRING_LIST,
          'Client CIDRs allowed to reach a LoadBalancer Service.',
        ),
        loadBalancerClass: described(
          STRING,
          'Which load-balancer implementation handles this Service; immutable once set.',
        ),
        allocateLoadBalancerNodePorts: described(
          { type: 'boolean' },
          'Whether a LoadBalancer Service gets node ports (default true).',
        ),
        sessionAffinity: described(
          STRING,
          'None (default) or ClientIP: keep sending a client to the same endpoint.',
        ),
        sessionAffinityConfig: {
          type: 'object',
          description: 'Settings of session affinity.',
          properties: {
            clientIP: {
              type: 'object',
              properties: {
                timeoutSeconds: described(
                  { type: 'integer', format: 'int32' },
                  'How long affinity lasts, 1 to 86400 seconds (default 10800).',
                ),
              },
            },
          },
        },
        publishNotReadyAddresses: described(
          { type: 'boolean' },
          'Publish endpoints of pods that are not ready.',
        ),
        trafficDistribution: described(
          STRING,
          'A preference for how traffic is spread over endpoints, e.g. PreferClose.',
        ),
      },
    },
    [`${CORE}.ServicePort`]: {
      type: 'object',
      required: ['port'],
      description: 'One port a Service exposes.',
      properties: {
        name: described(
          STRING,
          'A DNS label naming the port; required when the Service has more than one port.',
        ),
        protocol: described({ ...STRING, default: 'TCP' }, 'TCP (default), UDP or SCTP.'),
        appProtocol: described(STRING, 'The application protocol, as a hint for implementations.'),
        port: described({ ...PORT_NUMBER, default: 0 }, 'The port the Service listens on.'),
        targetPort: {
          allOf: [ref(INT_OR_STRING)],
          description: 'The port number or named container port on the pods; defaults to port.',
        },
        nodePort: described(
          PORT_NUMBER,
          'The port on every node for NodePort and LoadBalancer Services; allocated when unset.',
        ),
      },
    },
    [INT_OR_STRING]: {
      type: 'string',
      format: 'int-or-string',
      'x-kubernetes-int-or-string': true,
      description: 'A port number or a port name.',
    },
    [`${CORE}.ServiceStatus`]: {
      type: 'object',
      description: 'The current state of a Service.',
      'x-kubernetes-preserve-unknown-fields': true,
      properties: {
        loadBalancer: {
          type: 'object',
          description: 'The addresses of the load balancer, once one is provisioned.',
          properties: {
            ingress: {
              type: 'array',
              'x-kubernetes-list-type': 'atomic',
              items: {
                type: 'object',
                properties: {
                  ip: described(STRING, 'An IP address of the load balancer.'),
                  hostname: described(STRING, 'A DNS name of the load balancer.'),
                  ipMode: described(STRING, 'VIP or Proxy: how traffic to the address reaches the nodes.'),
                },
              },
            },
          },
        },
        conditions: {
          type: 'array',
          items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          'x-kubernetes-list-map-keys': ['type'],
          'x-kubernetes-list-type': 'map',
        },
      },
    },
  };
}

function listSchema(resource: ResourceType, itemSchema: string): Schema {
  return {
    type: 'object',
    required: ['items'],
    description: `${resource.kind}List is a list of ${resource.kind} objects.`,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      items: { type: 'array', items: { allOf: [ref(itemSchema)], default: {} } },
      metadata: { allOf: [ref(`${META}.ListMeta`)], default: {} },
    },
    'x-kubernetes-group-version-kind': gvk(resource.group, resource.version, `${resource.kind}List`),
  };
}

function queryParameter(name: string, description: string, type: 'string' | 'boolean' | 'integer'): Schema {
  return { name, in: 'query', description, schema: { type, uniqueItems: true } };
}

const PATH_NAME = (kind: string): Schema => ({
  name: 'name',
  in: 'path',
  description: `the name of the ${kind}`,
  required: true,
  schema: { type: 'string', uniqueItems: true },
});
const PATH_NAMESPACE: Schema = {
  name: 'namespace',
  in: 'path',
  description: 'the namespace of the object',
  required: true,
  schema: { type: 'string', uniqueItems: true },
};
const PRETTY = queryParameter('pretty', 'Indent the response.', 'string');
const DRY_RUN = queryParameter(
  'dryRun',
  'All: run every admission and validation step but store nothing.',
  'string',
);
const FIELD_MANAGER = queryParameter('fieldManager', 'Who makes the change, for field ownership.', 'string');
const FIELD_VALIDATION = queryParameter(
  'fieldValidation',
  'How the server treats unknown or duplicate fields in the request: Ignore, Warn or Strict.',
  'string',
);
const FORCE = queryParameter('force', 'For apply patches: take over fields other managers own.', 'boolean');
const LIST_PARAMETERS = [
  queryParameter('allowWatchBookmarks', 'Requests watch events with type "BOOKMARK".', 'boolean'),
  queryParameter('continue', 'The continue token of the previous page.', 'string'),
  queryParameter('fieldSelector', 'Restrict the returned objects by their fields.', 'string'),
  queryParameter('labelSelector', 'Restrict the returned objects by their labels.', 'string'),
  queryParameter('limit', 'The maximum number of objects to return.', 'integer'),
  queryParameter('resourceVersion', 'Which resourceVersion a list or watch starts from.', 'string'),
  queryParameter('resourceVersionMatch', 'How resourceVersion applies to list calls.', 'string'),
  queryParameter('sendInitialEvents', 'Whether a watch starts with synthetic ADDED events.', 'boolean'),
  queryParameter('timeoutSeconds', 'Timeout of the list/watch call.', 'integer'),
  queryParameter('watch', 'Watch for changes instead of listing.', 'boolean'),
];

const JSON_TYPES = ['application/json', 'application/yaml'];

function content(schema: Schema, types: readonly string[] = JSON_TYPES): Schema {
  return Object.fromEntries(types.map((t) => [t, { schema }]));
}

function response(schema: Schema, description = 'OK'): Schema {
  return { description, content: content(schema) };
}

interface Operations {
  [method: string]: Schema | Schema[];
}

/** The paths of one resource (its collection, its objects, and their subresources). */
function resourcePaths(resource: ResourceType, kindRef: string, listRef: string): Record<string, Operations> {
  const base = groupVersionPath(resource);
  const gvkExtension = { group: resource.group, version: resource.version, kind: resource.kind };
  const tag = resource.group === '' ? `core_${resource.version}` : `${resource.group}_${resource.version}`;
  const operationKind = `${resource.namespaced ? 'Namespaced' : ''}${resource.kind}`;
  const op = (action: string, verb: string, extra: Schema): Schema => ({
    tags: [tag],
    operationId: `${verb}${tag.replace(/[._-](\w)/g, (_m, c: string) => c.toUpperCase())}${operationKind}`,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvkExtension,
    ...extra,
  });
  const object = ref(kindRef);
  const write = { content: content(object) };
  // No strategic merge patch content type, for built-ins on purpose (see the module comment) and
  // for custom resources as upstream.
  const patchTypes = [
    'application/json-patch+json',
    'application/merge-patch+json',
    'application/apply-patch+yaml',
  ];
  const patchBody = { content: content(ref(`${META}.Patch`), patchTypes), required: true };
  const written = { '200': response(object), '201': response(object, 'Created') };
  const objectOperations = (subject: string, schemaRef: Schema, kindExtension: Schema): Operations => ({
    get: op('get', 'read', {
      description: `reads ${subject} of one ${resource.kind}`,
      responses: { '200': response(schemaRef) },
      'x-kubernetes-group-version-kind': kindExtension,
    }),
    put: op('put', 'replace', {
      description: `replaces ${subject} of one ${resource.kind}`,
      parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
      requestBody: { content: content(schemaRef), required: true },
      responses: { '200': response(schemaRef), '201': response(schemaRef, 'Created') },
      'x-kubernetes-group-version-kind': kindExtension,
    }),
    patch: op('patch', 'patch', {
      description: `patches ${subject} of one ${resource.kind}`,
      parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE],
      requestBody: patchBody,
      responses: { '200': response(schemaRef), '201': response(schemaRef, 'Created') },
      'x-kubernetes-group-version-kind': kindExtension,
    }),
  });
  const collection = resource.namespaced
    ? `${base}/namespaces/{namespace}/${resource.plural}`
    : `${base}/${resource.plural}`;
  const scopeParameters = resource.namespaced ? [PATH_NAMESPACE, PRETTY] : [PRETTY];
  const objectParameters = [PATH_NAME(resource.kind), ...scopeParameters];
  const paths: Record<string, Operations> = {
    [collection]: {
      get: op('list', 'list', {
        description: `lists or watches ${resource.kind} objects`,
        parameters: LIST_PARAMETERS,
        responses: { '200': response(ref(listRef)) },
      }),
      post: op('post', 'create', {
        description: `creates a ${resource.kind}`,
        parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
        requestBody: { ...write, required: true },
        responses: { ...written, '202': response(object, 'Accepted') },
      }),
      delete: op('deletecollection', 'deleteCollection', {
        description: `deletes the ${resource.kind} objects a selector matches`,
        parameters: [DRY_RUN, ...LIST_PARAMETERS],
        requestBody: { content: content(ref(`${META}.DeleteOptions`)) },
        responses: { '200': response(ref(`${META}.Status`)) },
      }),
      parameters: scopeParameters,
    },
    [`${collection}/{name}`]: {
      ...objectOperations(resource.kind, object, gvkExtension),
      delete: op('delete', 'delete', {
        description: `deletes a ${resource.kind}`,
        parameters: [DRY_RUN, queryParameter('gracePeriodSeconds', 'Seconds before deletion.', 'integer')],
        requestBody: { content: content(ref(`${META}.DeleteOptions`)) },
        responses: { '200': response(object), '202': response(object, 'Accepted') },
      }),
      parameters: objectParameters,
    },
  };
  if (resource.namespaced) {
    paths[`${base}/${resource.plural}`] = {
      get: op('list', 'list', {
        description: `lists or watches ${resource.kind} objects of every namespace`,
        parameters: LIST_PARAMETERS,
        responses: { '200': response(ref(listRef)) },
        operationId: `list${tag.replace(/[._-](\w)/g, (_m, c: string) => c.toUpperCase())}${resource.kind}ForAllNamespaces`,
      }),
      parameters: [PRETTY],
    };
  }
  if (resource.status) {
    paths[`${collection}/{name}/status`] = {
      ...objectOperations('status', object, gvkExtension),
      parameters: objectParameters,
    };
  }
  if (resource.scale) {
    paths[`${collection}/{name}/scale`] = {
      ...objectOperations('scale', ref('io.k8s.api.autoscaling.v1.Scale'), {
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
      }),
      parameters: objectParameters,
    };
  }
  return paths;
}

function scaleSchema(): Schema {
  return {
    type: 'object',
    description: 'The replica count of a scalable object, as the /scale subresource reads and writes it.',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { allOf: [ref(`${META}.ObjectMeta`)], default: {} },
      spec: { type: 'object', properties: { replicas: { type: 'integer', format: 'int32' } } },
      status: {
        type: 'object',
        properties: {
          replicas: { type: 'integer', format: 'int32', default: 0 },
          selector: { type: 'string' },
        },
      },
    },
    'x-kubernetes-group-version-kind': gvk('autoscaling', 'v1', 'Scale'),
  };
}

/**
 * The OpenAPI 3.0 document of one group-version (`group` is '' for the core group), or undefined
 * when nothing is served there.
 */
export function openApiV3Document(
  resources: readonly ResourceType[],
  group: string,
  version: string,
): object | undefined {
  const served = resources.filter((r) => r.group === group && r.version === version);
  if (served.length === 0) return undefined;
  const prefix = schemaPrefix(group, version);
  const schemas: Record<string, Schema> = metaSchemas();
  const paths: Record<string, Operations> = {};
  for (const resource of served) {
    const kindRef = `${prefix}.${resource.kind}`;
    const listRef = `${prefix}.${resource.kind}List`;
    schemas[kindRef] =
      (resource.custom === undefined ? builtinKindSchema(resource, schemas) : undefined) ??
      kindSchema(resource);
    schemas[listRef] = listSchema(resource, kindRef);
    if (resource.scale) schemas['io.k8s.api.autoscaling.v1.Scale'] = scaleSchema();
    if (resource.group === '' && resource.plural === 'services') overlay(schemas, serviceSchemas());
    Object.assign(paths, resourcePaths(resource, kindRef, listRef));
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths,
    components: {
      schemas,
      securitySchemes: {
        BearerToken: {
          type: 'apiKey',
          description: 'A bearer token in the Authorization header.',
          name: 'authorization',
          in: 'header',
        },
      },
    },
    security: [{ BearerToken: [] }],
  };
}

/** The served group-versions, as the index names them: `api/v1`, `apis/apps/v1`. */
function indexKeys(resources: readonly ResourceType[]): { key: string; group: string; version: string }[] {
  const keys = new Map<string, { key: string; group: string; version: string }>();
  for (const r of resources) {
    const key = groupVersionPath(r).slice(1);
    if (!keys.has(key)) keys.set(key, { key, group: r.group, version: r.version });
  }
  return [...keys.values()];
}

/**
 * The body of GET /openapi/v3: one entry per group-version with a URL carrying the document's hash.
 * kubectl caches documents by that URL, so the hash must change whenever the document does (a CRD
 * added or edited), exactly as upstream's content hash does.
 */
export function openApiV3Index(resources: readonly ResourceType[]): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const { key, group, version } of indexKeys(resources)) {
    const document = openApiV3Document(resources, group, version);
    const hash = createHash('sha512').update(JSON.stringify(document)).digest('hex').toUpperCase();
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { paths };
}
