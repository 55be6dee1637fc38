import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openApiV3Document, openApiV3Index, schemaPrefix } from './openapi.ts';
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';

type Json = Record<string, unknown>;

interface Document {
  openapi: string;
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json> };
}

const WIDGET: ResourceType = {
  group: 'example.com',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  singular: 'widget',
  namespaced: true,
  shortNames: [],
  categories: [],
  status: true,
  scale: false,
  verbs: [],
  hasSpec: true,
  custom: {
    printerColumns: [],
    schema: {
      type: 'object',
      properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
    },
  },
};

function document(resources: readonly ResourceType[], group: string, version: string): Document {
  const doc = openApiV3Document(resources, group, version);
  assert.ok(doc, `${group}/${version} has a document`);
  return doc as Document;
}

/**
 * What kubectl's field-validation check looks for: a PATCH operation tagged with the kind whose own
 * parameters include the fieldValidation query parameter.
 */
function patchSupportsFieldValidation(doc: Document, group: string, version: string, kind: string): boolean {
  return Object.values(doc.paths).some((path) => {
    const patch = path.patch;
    if (patch === undefined) return false;
    const gvk = patch['x-kubernetes-group-version-kind'] as Json;
    if (gvk.group !== group || gvk.version !== version || gvk.kind !== kind) return false;
    return (patch.parameters as Json[]).some((p) => p.name === 'fieldValidation' && p.in === 'query');
  });
}

function schemaForKind(doc: Document, group: string, version: string, kind: string): Json | undefined {
  return Object.values(doc.components.schemas).find((schema) => {
    const gvks = schema['x-kubernetes-group-version-kind'] as Json[] | undefined;
    return gvks?.some((g) => g.group === group && g.version === version && g.kind === kind) ?? false;
  });
}

describe('openApiV3Index', () => {
  test('lists every served group-version with a hash that changes with its document', () => {
    const index = openApiV3Index(BUILTIN_RESOURCES) as {
      paths: Record<string, { serverRelativeURL: string }>;
    };
    assert.deepEqual(Object.keys(index.paths).sort(), [
      'api/v1',
      'apis/admissionregistration.k8s.io/v1',
      'apis/apiextensions.k8s.io/v1',
      'apis/apps/v1',
      'apis/coordination.k8s.io/v1',
      'apis/discovery.k8s.io/v1',
      'apis/events.k8s.io/v1',
      'apis/policy/v1',
      'apis/rbac.authorization.k8s.io/v1',
    ]);
    assert.match(
      index.paths['apis/apps/v1']!.serverRelativeURL,
      /^\/openapi\/v3\/apis\/apps\/v1\?hash=[0-9A-F]{128}$/,
    );
    const withCrd = openApiV3Index([...BUILTIN_RESOURCES, WIDGET]) as typeof index;
    assert.ok(withCrd.paths['apis/example.com/v1']);
    assert.equal(withCrd.paths['api/v1']!.serverRelativeURL, index.paths['api/v1']!.serverRelativeURL);
    const changed = openApiV3Index([...BUILTIN_RESOURCES, { ...WIDGET, status: false }]) as typeof index;
    assert.notEqual(
      changed.paths['apis/example.com/v1']!.serverRelativeURL,
      withCrd.paths['apis/example.com/v1']!.serverRelativeURL,
    );
  });
});

describe('openApiV3Document', () => {
  test('is undefined for a group-version nobody serves', () => {
    assert.equal(openApiV3Document(BUILTIN_RESOURCES, 'example.com', 'v1'), undefined);
    assert.equal(openApiV3Document(BUILTIN_RESOURCES, 'apps', 'v2'), undefined);
  });

  test('every served kind has a PATCH operation kubectl recognises as supporting fieldValidation', () => {
    for (const r of BUILTIN_RESOURCES) {
      const doc = document(BUILTIN_RESOURCES, r.group, r.version);
      assert.equal(doc.openapi, '3.0.0');
      assert.ok(
        patchSupportsFieldValidation(doc, r.group, r.version, r.kind),
        `${r.kind} (${r.group}/${r.version})`,
      );
    }
  });

  test('describes each kind and its list with x-kubernetes-group-version-kind', () => {
    const core = document(BUILTIN_RESOURCES, '', 'v1');
    const service = schemaForKind(core, '', 'v1', 'Service');
    assert.ok(service);
    assert.equal(core.components.schemas['io.k8s.api.core.v1.Service'], service);
    const properties = service.properties as Record<string, Json>;
    for (const field of ['apiVersion', 'kind', 'metadata', 'spec', 'status'])
      assert.ok(properties[field], field);
    assert.deepEqual(properties.spec!.allOf, [
      { $ref: '#/components/schemas/io.k8s.api.core.v1.ServiceSpec' },
    ]);
    const serviceSpec = core.components.schemas['io.k8s.api.core.v1.ServiceSpec'] as {
      properties: Record<string, Json>;
    };
    assert.equal(serviceSpec.properties.ports!['x-kubernetes-patch-merge-key'], 'port');
    const servicePort = core.components.schemas['io.k8s.api.core.v1.ServicePort'] as {
      properties: Record<string, Json>;
    };
    assert.deepEqual(servicePort.properties.targetPort!.allOf, [
      { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString' },
    ]);
    assert.equal(
      core.components.schemas['io.k8s.apimachinery.pkg.util.intstr.IntOrString']![
        'x-kubernetes-int-or-string'
      ],
      true,
    );
    // Fields the hand-written Service schemas do not mention come from upstream's types.
    assert.ok(serviceSpec.properties.sessionAffinityConfig, 'generated fields stay under the overlay');
    const pod = schemaForKind(core, '', 'v1', 'Pod') as { properties: Record<string, Json> };
    assert.deepEqual(pod.properties.spec!.allOf, [
      { $ref: '#/components/schemas/io.k8s.api.core.v1.PodSpec' },
    ]);
    const podSpec = core.components.schemas['io.k8s.api.core.v1.PodSpec'] as {
      properties: Record<string, Json>;
    };
    assert.equal(podSpec.properties.containers!.type, 'array');
    assert.deepEqual((podSpec.properties.containers!.items as Json).allOf, [
      { $ref: '#/components/schemas/io.k8s.api.core.v1.Container' },
    ]);
    const slices = document(BUILTIN_RESOURCES, 'discovery.k8s.io', 'v1');
    const slice = schemaForKind(slices, 'discovery.k8s.io', 'v1', 'EndpointSlice') as {
      properties: Record<string, Json>;
    };
    assert.equal(slice.properties.addressType!.type, 'string');
    assert.ok(slices.components.schemas['io.k8s.api.discovery.v1.EndpointConditions']);
    assert.deepEqual(properties.metadata!.allOf, [
      { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' },
    ]);
    const list = schemaForKind(core, '', 'v1', 'ServiceList');
    assert.ok(list);
    assert.deepEqual(((list.properties as Record<string, Json>).items!.items as Json).allOf, [
      { $ref: '#/components/schemas/io.k8s.api.core.v1.Service' },
    ]);
    assert.ok(core.components.schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta']);
    const apps = document(BUILTIN_RESOURCES, 'apps', 'v1');
    assert.ok(schemaForKind(apps, 'apps', 'v1', 'Deployment'));
    assert.ok(schemaForKind(apps, 'autoscaling', 'v1', 'Scale'), 'the scale subresource kind');
  });

  test('paths cover collections, objects, all namespaces and subresources', () => {
    const core = document(BUILTIN_RESOURCES, '', 'v1');
    const collection = core.paths['/api/v1/namespaces/{namespace}/services']!;
    assert.deepEqual(
      Object.keys(collection)
        .filter((k) => k !== 'parameters')
        .sort(),
      ['delete', 'get', 'post'],
    );
    assert.equal(collection.get!['x-kubernetes-action'], 'list');
    const object = core.paths['/api/v1/namespaces/{namespace}/services/{name}']!;
    assert.deepEqual(
      Object.keys(object)
        .filter((k) => k !== 'parameters')
        .sort(),
      ['delete', 'get', 'patch', 'put'],
    );
    assert.ok(core.paths['/api/v1/services'], 'list across namespaces');
    assert.ok(core.paths['/api/v1/namespaces/{namespace}/services/{name}/status']);
    assert.ok(core.paths['/api/v1/nodes/{name}'], 'cluster-scoped kinds have no namespace segment');
    assert.equal(core.paths['/api/v1/namespaces/{namespace}/configmaps/{name}/status'], undefined);
    const apps = document(BUILTIN_RESOURCES, 'apps', 'v1');
    assert.ok(apps.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale']);
  });

  test('built-in PATCH operations leave strategic merge patch to kubectl’s compiled-in merge keys', () => {
    const core = document(BUILTIN_RESOURCES, '', 'v1');
    const patch = core.paths['/api/v1/namespaces/{namespace}/services/{name}']!.patch!;
    const types = Object.keys((patch.requestBody as { content: Json }).content).sort();
    assert.deepEqual(types, [
      'application/apply-patch+yaml',
      'application/json-patch+json',
      'application/merge-patch+json',
    ]);
  });

  test('custom resources use their CRD schema inside the standard envelope', () => {
    const doc = document([...BUILTIN_RESOURCES, WIDGET], 'example.com', 'v1');
    const widget = doc.components.schemas['com.example.v1.Widget'];
    assert.ok(widget);
    const properties = widget.properties as Record<string, Json>;
    assert.deepEqual(properties.spec, { type: 'object', properties: { size: { type: 'integer' } } });
    assert.ok(properties.metadata && properties.apiVersion && properties.kind);
    assert.deepEqual(widget['x-kubernetes-group-version-kind'], [
      { group: 'example.com', version: 'v1', kind: 'Widget' },
    ]);
    assert.ok(schemaForKind(doc, 'example.com', 'v1', 'WidgetList'));
    assert.ok(patchSupportsFieldValidation(doc, 'example.com', 'v1', 'Widget'));
  });

  test('schema prefixes follow upstream package names', () => {
    assert.equal(schemaPrefix('', 'v1'), 'io.k8s.api.core.v1');
    assert.equal(schemaPrefix('apps', 'v1'), 'io.k8s.api.apps.v1');
    assert.equal(schemaPrefix('discovery.k8s.io', 'v1'), 'io.k8s.api.discovery.v1');
    assert.equal(
      schemaPrefix('apiextensions.k8s.io', 'v1'),
      'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1',
    );
    assert.equal(schemaPrefix('portico.dev', 'v1alpha1'), 'dev.portico.v1alpha1');
  });
});
