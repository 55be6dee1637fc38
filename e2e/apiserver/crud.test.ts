import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  type V1Lease,
} from '@kubernetes/client-node';
import { type ApiServer, startApiServer } from './index.ts';
import { call, kubeConfigFor } from './test-helpers.ts';

let server: ApiServer;
let core: CoreV1Api;
let leases: CoordinationV1Api;
let apps: AppsV1Api;
let policy: PolicyV1Api;
let rbac: RbacAuthorizationV1Api;

before(async () => {
  server = await startApiServer();
  const kc = kubeConfigFor(server);
  core = kc.makeApiClient(CoreV1Api);
  leases = kc.makeApiClient(CoordinationV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  policy = kc.makeApiClient(PolicyV1Api);
  rbac = kc.makeApiClient(RbacAuthorizationV1Api);
});
after(() => server.close());

/** Drops client-node's class prototypes so objects compare as JSON. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function apiCode(err: unknown): number {
  assert.ok(err instanceof ApiException, `expected an ApiException, got ${String(err)}`);
  return err.code;
}

function statusOf(err: unknown): Record<string, unknown> {
  assert.ok(err instanceof ApiException);
  return (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as Record<string, unknown>;
}

describe('bootstrap and authentication', () => {
  test('default, kube-system, kube-public and kube-node-lease exist at start', async () => {
    const list = await core.listNamespace();
    assert.deepEqual(list.items.map((n) => n.metadata?.name).sort(), [
      'default',
      'kube-node-lease',
      'kube-public',
      'kube-system',
    ]);
    assert.equal(list.items[0]!.status?.phase, 'Active');
  });

  test('requests without the bearer token get 401; health and version are public', async () => {
    const denied = await call(server, 'GET', '/api/v1/namespaces', { anonymous: true });
    assert.equal(denied.status, 401);
    assert.equal(denied.body.reason, 'Unauthorized');
    assert.equal((await call(server, 'GET', '/healthz', { anonymous: true })).text, 'ok');
    assert.equal((await call(server, 'GET', '/version', { anonymous: true })).body.major, '1');
  });
});

describe('CRUD through client-node', () => {
  test('create fills uid, creationTimestamp and resourceVersion; get returns the same object', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'settings', labels: { app: 'web' } }, data: { a: '1' } },
    });
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(String(created.metadata?.creationTimestamp?.toISOString()), /^\d{4}-/);
    assert.ok(Number(created.metadata?.resourceVersion) > 0);
    const fetched = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'default' });
    assert.deepEqual(fetched.data, { a: '1' });
    assert.equal(fetched.metadata?.resourceVersion, created.metadata?.resourceVersion);
  });

  test('a duplicate create is 409 AlreadyExists', async () => {
    await assert.rejects(
      core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'settings' } } }),
      (err) =>
        apiCode(err) === 409 &&
        statusOf(err).reason === 'AlreadyExists' &&
        statusOf(err).message === 'configmaps "settings" already exists',
    );
  });

  test('a missing object is 404 NotFound with the Kubernetes message', async () => {
    await assert.rejects(core.readNamespacedService({ name: 'nope', namespace: 'default' }), (err) => {
      return apiCode(err) === 404 && statusOf(err).message === 'services "nope" not found';
    });
  });

  test('a missing namespace is 404 on create', async () => {
    await assert.rejects(
      core.createNamespacedConfigMap({ namespace: 'absent', body: { metadata: { name: 'x' } } }),
      (err) => apiCode(err) === 404 && statusOf(err).message === 'namespaces "absent" not found',
    );
  });

  test('generateName gets a random suffix', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { generateName: 'gen-' } },
    });
    assert.match(created.metadata?.name ?? '', /^gen-[a-z0-9]{5}$/);
  });

  test('update with the current resourceVersion succeeds and bumps it; resourceVersions are one global counter', async () => {
    const current = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'default' });
    const updated = await core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace: 'default',
      body: { ...current, data: { a: '2' } },
    });
    assert.ok(Number(updated.metadata?.resourceVersion) > Number(current.metadata?.resourceVersion));
    const other = await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 's' }, stringData: { k: 'v' } },
    });
    assert.equal(Number(other.metadata?.resourceVersion), Number(updated.metadata?.resourceVersion) + 1);
    assert.equal(other.type, 'Opaque');
  });

  test('an update that changes nothing keeps the resourceVersion', async () => {
    const current = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'default' });
    const again = await core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace: 'default',
      body: current,
    });
    assert.equal(again.metadata?.resourceVersion, current.metadata?.resourceVersion);
  });

  test('two clients updating a lease from the same resourceVersion: exactly one wins, the other gets 409 Conflict', async () => {
    const lease = await leases.createNamespacedLease({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'portico-leader' },
        spec: { holderIdentity: 'none', leaseDurationSeconds: 15 },
      },
    });
    const attempt = (holder: string) =>
      leases.replaceNamespacedLease({
        name: 'portico-leader',
        namespace: 'kube-system',
        body: { ...lease, spec: { ...lease.spec, holderIdentity: holder } } as V1Lease,
      });
    const results = await Promise.allSettled([attempt('a'), attempt('b')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.equal(apiCode(lost[0]!.reason), 409);
    assert.equal(statusOf(lost[0]!.reason).reason, 'Conflict');
    assert.equal(
      statusOf(lost[0]!.reason).message,
      'Operation cannot be fulfilled on leases.coordination.k8s.io "portico-leader": the object has been modified; please apply your changes to the latest version and try again',
    );
    const final = await leases.readNamespacedLease({ name: 'portico-leader', namespace: 'kube-system' });
    assert.equal(
      final.spec?.holderIdentity,
      (won[0] as PromiseFulfilledResult<V1Lease>).value.spec?.holderIdentity,
    );
  });

  test('delete removes the object; deleting again is 404', async () => {
    await core.deleteNamespacedSecret({ name: 's', namespace: 'default' });
    await assert.rejects(
      core.deleteNamespacedSecret({ name: 's', namespace: 'default' }),
      (err) => apiCode(err) === 404,
    );
  });
});

describe('registry access from tests', () => {
  test('registry.get returns a copy, so editing it and writing it back is a real update', async () => {
    const configmaps = server.registry.catalog.find('', 'v1', 'configmaps')!;
    const user = { username: 'test', groups: [] };
    await server.registry.create(
      configmaps,
      'default',
      { metadata: { name: 'copied' }, data: { a: '1' } },
      { dryRun: false, user },
    );
    const copy = server.registry.get(configmaps, 'default', 'copied');
    (copy.data as Record<string, string>).a = '2';
    assert.deepEqual(
      server.registry.get(configmaps, 'default', 'copied').data,
      { a: '1' },
      'the store is untouched',
    );
    const before = server.store.currentRevision();
    const result = await server.registry.update(configmaps, 'default', 'copied', copy, {
      dryRun: false,
      user,
    });
    assert.deepEqual(result.object.data, { a: '2' });
    assert.equal(server.store.currentRevision(), before + 1);
    const listed = server.registry
      .list(configmaps, 'default', {})
      .items.find((o) => (o.metadata as { name: string }).name === 'copied')!;
    (listed.data as Record<string, string>).a = '3';
    assert.deepEqual(server.registry.get(configmaps, 'default', 'copied').data, { a: '2' });
  });
});

describe('discovery', () => {
  test('serves the legacy discovery documents kubectl falls back to', async () => {
    const api = await call(server, 'GET', '/api');
    assert.deepEqual(api.body.versions, ['v1']);
    const v1 = await call(server, 'GET', '/api/v1');
    const names = (v1.body.resources as { name: string }[]).map((r) => r.name);
    assert.ok(
      names.includes('services') && names.includes('services/status') && names.includes('pods/status'),
    );
    const groups = await call(server, 'GET', '/apis');
    assert.deepEqual(
      (groups.body.groups as { name: string }[]).map((g) => g.name),
      [
        'events.k8s.io',
        'discovery.k8s.io',
        'coordination.k8s.io',
        'apps',
        'policy',
        'rbac.authorization.k8s.io',
        'admissionregistration.k8s.io',
        'apiextensions.k8s.io',
      ],
    );
    const apps = await call(server, 'GET', '/apis/apps/v1');
    const scale = (apps.body.resources as { name: string; group?: string; kind: string }[]).find(
      (r) => r.name === 'deployments/scale',
    );
    assert.deepEqual([scale?.group, scale?.kind], ['autoscaling', 'Scale']);
    assert.equal((await call(server, 'GET', '/apis/nope/v1')).status, 404);
  });
});

describe('content negotiation', () => {
  test('PartialObjectMetadata and PartialObjectMetadataList when the Accept header asks for them', async () => {
    const accept = 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json';
    const list = await call(server, 'GET', '/api/v1/namespaces', { accept });
    assert.equal(list.body.kind, 'PartialObjectMetadataList');
    const items = list.body.items as { kind: string; metadata: { name: string }; status?: unknown }[];
    assert.equal(items[0]!.kind, 'PartialObjectMetadata');
    assert.equal(items[0]!.status, undefined);
    const one = await call(server, 'GET', '/api/v1/namespaces/default', {
      accept: 'application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io',
    });
    assert.deepEqual(Object.keys(one.body), ['kind', 'apiVersion', 'metadata']);
    const plain = await call(server, 'GET', '/api/v1/namespaces/default', { accept: 'application/json' });
    assert.equal(plain.body.kind, 'Namespace');
  });
});

describe('validation and request errors', () => {
  test('invalid names and labels are 422 Invalid with field causes', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: { metadata: { name: 'Bad_Name', labels: { 'bad key!': 'x', ok: 'bad value!' } } },
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.reason, 'Invalid');
    const causes = (res.body.details as { causes: { field: string }[] }).causes;
    assert.deepEqual(
      causes.map((c) => c.field),
      ['metadata.name', 'metadata.labels', 'metadata.labels'],
    );
    assert.match(
      String(res.body.message),
      /^ConfigMap "Bad_Name" is invalid: \[metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
    );
  });

  test('fieldValidation: Strict rejects unknown fields, Warn drops them with warnings, Ignore drops them', async () => {
    const body = (name: string) => ({ metadata: { name, bogusMeta: 1 }, data: { a: 'b' }, bogus: true });
    const strict = await call(
      server,
      'POST',
      '/api/v1/namespaces/default/configmaps?fieldValidation=Strict',
      { body: body('strict') },
    );
    assert.equal(strict.status, 400);
    assert.equal(
      strict.body.message,
      // In document order, as upstream's strict decoder meets them.
      'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.bogusMeta", unknown field "bogus"',
    );
    const warn = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', { body: body('warn') });
    assert.equal(warn.status, 201);
    assert.equal(
      warn.headers.warning,
      '299 - "unknown field \\"metadata.bogusMeta\\"", 299 - "unknown field \\"bogus\\""',
    );
    assert.equal(warn.body.bogus, undefined);
    const ignore = await call(
      server,
      'POST',
      '/api/v1/namespaces/default/configmaps?fieldValidation=Ignore',
      { body: body('ignore') },
    );
    assert.equal(ignore.status, 201);
    assert.equal(ignore.headers.warning, undefined);
    assert.equal(ignore.body.bogus, undefined);
    const patched = await call(
      server,
      'PATCH',
      '/api/v1/namespaces/default/configmaps/warn?fieldValidation=Strict',
      {
        body: { bogus: 1 },
        contentType: 'application/merge-patch+json',
      },
    );
    assert.equal(patched.status, 400);
  });

  test('a Service port out of range is 422 with the Kubernetes wording', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/services', {
      body: { metadata: { name: 'bad' }, spec: { ports: [{ port: 70000 }] } },
    });
    assert.equal(res.status, 422);
    assert.equal(
      res.body.message,
      'Service "bad" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
    );
  });

  test('a body namespace that differs from the URL is 400 BadRequest', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: { metadata: { name: 'x', namespace: 'kube-system' } },
    });
    assert.equal(res.status, 400);
    assert.equal(
      res.body.message,
      'the namespace of the provided object does not match the namespace sent on the request',
    );
  });

  test('an EndpointSlice without addressType or with an endpoint without addresses is 422', async () => {
    const res = await call(server, 'POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
      body: { metadata: { name: 'web-abc' }, endpoints: [{ addresses: [] }] },
    });
    assert.equal(res.status, 422);
    assert.deepEqual(
      (res.body.details as { causes: { field: string }[] }).causes.map((c) => c.field),
      ['addressType', 'endpoints[0].addresses'],
    );
    const ok = await call(server, 'POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
      body: {
        metadata: { name: 'web-abc' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['198.18.0.5'] }],
        ports: [{ port: 80 }],
      },
    });
    assert.equal(ok.status, 201, ok.text);
  });

  test('POST to a named object is 405; a protobuf body is 415; an unknown path is 404', async () => {
    assert.equal(
      (await call(server, 'POST', '/api/v1/namespaces/default/configmaps/settings', { body: {} })).status,
      405,
    );
    const proto = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: 'k8s\u0000',
      contentType: 'application/vnd.kubernetes.protobuf',
    });
    assert.equal(proto.status, 415);
    assert.equal(proto.body.reason, 'UnsupportedMediaType');
    assert.equal((await call(server, 'GET', '/apis/example.com/v1/widgets')).status, 404);
  });
});

describe('services and status', () => {
  test('a Service keeps the clusterIP the request gave and gets protocol and targetPort defaults', async () => {
    const svc = await core.createNamespacedService({
      namespace: 'default',
      body: {
        metadata: { name: 'web' },
        spec: { clusterIP: '198.18.0.10', ports: [{ port: 80 }], selector: { app: 'web' } },
      },
    });
    assert.equal(svc.spec?.clusterIP, '198.18.0.10');
    assert.deepEqual(svc.spec?.clusterIPs, ['198.18.0.10']);
    assert.equal(svc.spec?.type, 'ClusterIP');
    assert.equal(svc.spec?.ports?.[0]?.protocol, 'TCP');
    assert.equal(svc.spec?.ports?.[0]?.targetPort, 80);
    const noIp = await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'plain' }, spec: { ports: [{ port: 80 }] } },
    });
    assert.equal(noIp.spec?.clusterIP, undefined);
  });

  test('writes to /status change only status; writes to the main resource ignore status', async () => {
    const svc = await core.readNamespacedService({ name: 'web', namespace: 'default' });
    const ingress = { loadBalancer: { ingress: [{ ip: '198.18.0.100' }] } };
    const statusWrite = await core.replaceNamespacedServiceStatus({
      name: 'web',
      namespace: 'default',
      body: {
        ...svc,
        metadata: { ...svc.metadata, labels: { sneaky: 'yes' } },
        spec: { ...svc.spec, selector: { app: 'other' } },
        status: ingress,
      },
    });
    assert.deepEqual(plain(statusWrite.status), ingress);
    assert.deepEqual(statusWrite.spec?.selector, { app: 'web' });
    assert.equal(statusWrite.metadata?.labels, undefined);
    const mainWrite = await core.replaceNamespacedService({
      name: 'web',
      namespace: 'default',
      body: {
        ...statusWrite,
        spec: { ...statusWrite.spec, selector: { app: 'v2' } },
        status: { loadBalancer: {} },
      },
    });
    assert.deepEqual(plain(mainWrite.status), ingress);
    assert.deepEqual(mainWrite.spec?.selector, { app: 'v2' });
  });

  test('an update without clusterIP or nodePorts keeps the allocated ones; changing clusterIP is 422', async () => {
    await call(server, 'POST', '/api/v1/namespaces/default/services', {
      body: {
        metadata: { name: 'np' },
        spec: { type: 'NodePort', clusterIP: '198.18.0.11', ports: [{ port: 80, nodePort: 30080 }] },
      },
    });
    const replaced = await call(server, 'PUT', '/api/v1/namespaces/default/services/np', {
      body: {
        metadata: { name: 'np' },
        spec: { type: 'NodePort', ports: [{ port: 80 }], selector: { app: 'x' } },
      },
    });
    assert.equal(replaced.status, 200, replaced.text);
    const spec = replaced.body.spec as { clusterIP: string; ports: { nodePort: number }[] };
    assert.equal(spec.clusterIP, '198.18.0.11');
    assert.equal(spec.ports[0]!.nodePort, 30080);
    const moved = await call(server, 'PATCH', '/api/v1/namespaces/default/services/np', {
      body: { spec: { clusterIP: '198.18.0.12' } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(moved.status, 422);
    assert.equal(
      moved.body.message,
      'Service "np" is invalid: spec.clusterIPs[0]: Invalid value: "198.18.0.12": may not change once set',
    );
  });

  test('generation starts at 1 and changes only with spec', async () => {
    const res = await call(server, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
      body: {
        metadata: { name: 'web' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'c', image: 'nginx' }] },
          },
        },
      },
    });
    assert.equal(res.status, 201);
    assert.equal((res.body.metadata as { generation: number }).generation, 1);
    const labelled = await call(server, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web', {
      body: { metadata: { labels: { x: 'y' } } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal((labelled.body.metadata as { generation: number }).generation, 1);
    const scaled = await call(server, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', {
      body: { spec: { replicas: 3 } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(scaled.status, 200);
    assert.deepEqual(scaled.body.spec, { replicas: 3 });
    assert.equal((scaled.body.status as { selector: string }).selector, 'app=web');
    const after = await call(server, 'GET', '/apis/apps/v1/namespaces/default/deployments/web');
    assert.equal((after.body.metadata as { generation: number }).generation, 2);
    assert.equal((after.body.spec as { replicas: number }).replicas, 3);
  });

  test('dryRun=All validates and answers but stores nothing', async () => {
    const before = server.store.currentRevision();
    const res = await call(server, 'POST', '/api/v1/namespaces/default/configmaps?dryRun=All', {
      body: { metadata: { name: 'dry' } },
    });
    assert.equal(res.status, 201);
    assert.equal((res.body.metadata as { name: string }).name, 'dry');
    assert.equal(server.store.currentRevision(), before);
    assert.equal((await call(server, 'GET', '/api/v1/namespaces/default/configmaps/dry')).status, 404);
    const invalid = await call(server, 'POST', '/api/v1/namespaces/default/configmaps?dryRun=All', {
      body: { metadata: { name: 'Dry' } },
    });
    assert.equal(invalid.status, 422);
  });
});

describe('events', () => {
  test('an events.k8s.io/v1 Event is the same object as a core/v1 Event', async () => {
    const created = await call(server, 'POST', '/apis/events.k8s.io/v1/namespaces/default/events', {
      body: {
        metadata: { name: 'web.1' },
        eventTime: '2026-01-01T00:00:00.000000Z',
        reportingController: 'portico.dev/loadbalancer',
        reportingInstance: 'portico-1',
        action: 'Allocate',
        reason: 'IPAllocated',
        type: 'Normal',
        note: 'assigned 198.18.0.100',
        regarding: { kind: 'Service', namespace: 'default', name: 'web' },
      },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.apiVersion, 'events.k8s.io/v1');
    assert.equal(created.body.note, 'assigned 198.18.0.100');
    const core = await call(
      server,
      'GET',
      '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb',
    );
    const items = core.body.items as Record<string, unknown>[];
    assert.equal(items.length, 1);
    assert.equal(items[0]!.message, 'assigned 198.18.0.100');
    assert.equal(items[0]!.reportingComponent, 'portico.dev/loadbalancer');
    assert.deepEqual(items[0]!.involvedObject, { kind: 'Service', namespace: 'default', name: 'web' });
    const patched = await call(server, 'PATCH', '/apis/events.k8s.io/v1/namespaces/default/events/web.1', {
      body: { series: { count: 2, lastObservedTime: '2026-01-01T00:01:00.000000Z' } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal((patched.body.series as { count: number }).count, 2);
    assert.equal(patched.body.note, 'assigned 198.18.0.100');
  });
});

describe('list: selectors and pagination', () => {
  before(async () => {
    await call(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'sel' } } });
    for (let i = 0; i < 7; i++) {
      await call(server, 'POST', '/api/v1/namespaces/sel/pods', {
        body: {
          metadata: {
            name: `p${i}`,
            labels: { app: i % 2 === 0 ? 'even' : 'odd', ...(i === 3 ? { special: '' } : {}) },
          },
          spec: { nodeName: `node-${i % 3}`, containers: [{ name: 'c', image: 'busybox' }] },
        },
      });
    }
  });

  const names = async (query: string): Promise<string[]> => {
    const res = await call(server, 'GET', `/api/v1/namespaces/sel/pods?${query}`);
    assert.equal(res.status, 200, res.text);
    return (res.body.items as { metadata: { name: string } }[]).map((p) => p.metadata.name);
  };

  test('labelSelector supports =, ==, !=, in, notin, exists and !key', async () => {
    assert.deepEqual(await names('labelSelector=app%3Deven'), ['p0', 'p2', 'p4', 'p6']);
    assert.deepEqual(await names('labelSelector=app%3D%3Dodd'), ['p1', 'p3', 'p5']);
    assert.deepEqual(await names('labelSelector=app!%3Deven'), ['p1', 'p3', 'p5']);
    assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app in (odd)')}`), ['p1', 'p3', 'p5']);
    assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app notin (odd)')}`), [
      'p0',
      'p2',
      'p4',
      'p6',
    ]);
    assert.deepEqual(await names('labelSelector=special'), ['p3']);
    assert.deepEqual(await names('labelSelector=!special,app%3Dodd'), ['p1', 'p5']);
  });

  test('fieldSelector on spec.nodeName, status.phase and metadata.name; unsupported fields are 400', async () => {
    assert.deepEqual(await names('fieldSelector=spec.nodeName%3Dnode-1'), ['p1', 'p4']);
    assert.deepEqual(await names('fieldSelector=status.phase%3DPending,metadata.name!%3Dp0'), [
      'p1',
      'p2',
      'p3',
      'p4',
      'p5',
      'p6',
    ]);
    const bad = await call(server, 'GET', '/api/v1/namespaces/sel/pods?fieldSelector=spec.bogus%3D1');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.message, 'field label not supported: spec.bogus');
  });

  test('limit and continue page through a list at one resourceVersion', async () => {
    const first = await call(server, 'GET', '/api/v1/namespaces/sel/pods?limit=3');
    const meta = first.body.metadata as {
      continue: string;
      remainingItemCount: number;
      resourceVersion: string;
    };
    assert.equal((first.body.items as unknown[]).length, 3);
    assert.equal(meta.remainingItemCount, 4);
    const seen = (first.body.items as { metadata: { name: string } }[]).map((p) => p.metadata.name);
    let token: string | undefined = meta.continue;
    while (token) {
      const page = await call(
        server,
        'GET',
        `/api/v1/namespaces/sel/pods?limit=3&continue=${encodeURIComponent(token)}`,
      );
      seen.push(...(page.body.items as { metadata: { name: string } }[]).map((p) => p.metadata.name));
      assert.equal((page.body.metadata as { resourceVersion: string }).resourceVersion, meta.resourceVersion);
      token = (page.body.metadata as { continue?: string }).continue;
    }
    assert.deepEqual(seen, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
  });

  test('a continue token from before a compaction is 410 Expired', async () => {
    const first = await call(server, 'GET', '/api/v1/namespaces/sel/pods?limit=2');
    await call(server, 'POST', '/api/v1/namespaces/sel/configmaps', { body: { metadata: { name: 'bump' } } });
    server.faults.compactHistory();
    const token = (first.body.metadata as { continue: string }).continue;
    const res = await call(
      server,
      'GET',
      `/api/v1/namespaces/sel/pods?limit=2&continue=${encodeURIComponent(token)}`,
    );
    assert.equal(res.status, 410);
    assert.equal(res.body.reason, 'Expired');
  });

  test('all-namespaces lists and cluster-scoped lists', async () => {
    const all = await call(server, 'GET', '/api/v1/pods?labelSelector=special');
    assert.deepEqual(
      (all.body.items as { metadata: { namespace: string } }[]).map((p) => p.metadata.namespace),
      ['sel'],
    );
    assert.equal(all.body.kind, 'PodList');
  });
});

describe('the kinds a Helm chart installs beside workloads: DaemonSets, PodDisruptionBudgets, RBAC', () => {
  const template = {
    metadata: { labels: { app: 'agent' } },
    spec: { containers: [{ name: 'agent', image: 'portico/agent:1' }] },
  };

  test('a DaemonSet gets upstream defaults and generation 1, takes status through /status, and its selector must match', async () => {
    const created = await apps.createNamespacedDaemonSet({
      namespace: 'default',
      body: { metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template } },
    });
    assert.equal(created.metadata?.generation, 1);
    assert.equal(created.spec?.revisionHistoryLimit, 10);
    assert.deepEqual(plain(created.spec?.updateStrategy), {
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
    });
    assert.equal(created.spec?.template.spec?.restartPolicy, 'Always');
    const withStatus = await apps.replaceNamespacedDaemonSetStatus({
      name: 'agent',
      namespace: 'default',
      body: {
        ...created,
        status: {
          desiredNumberScheduled: 2,
          currentNumberScheduled: 2,
          numberReady: 1,
          numberMisscheduled: 0,
        },
      },
    });
    assert.equal(withStatus.status?.numberReady, 1);
    assert.equal(withStatus.metadata?.generation, 1);
    const mismatch = await apps
      .createNamespacedDaemonSet({
        namespace: 'default',
        body: {
          metadata: { name: 'stray' },
          spec: { selector: { matchLabels: { app: 'other' } }, template },
        },
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    assert.equal(apiCode(mismatch), 422);
    assert.match(String(statusOf(mismatch).message), /`selector` does not match template `labels`/);
  });

  test('a PodDisruptionBudget takes status through /status and ignores it on the main resource', async () => {
    const created = await policy.createNamespacedPodDisruptionBudget({
      namespace: 'default',
      body: {
        metadata: { name: 'agent' },
        spec: { minAvailable: 1, selector: { matchLabels: { app: 'agent' } } },
      },
    });
    assert.equal(created.metadata?.generation, 1);
    const status = {
      currentHealthy: 2,
      desiredHealthy: 1,
      disruptionsAllowed: 1,
      expectedPods: 2,
      observedGeneration: 1,
    };
    const written = await policy.replaceNamespacedPodDisruptionBudgetStatus({
      name: 'agent',
      namespace: 'default',
      body: { ...created, status },
    });
    assert.equal(written.status?.disruptionsAllowed, 1);
    const replaced = await policy.replaceNamespacedPodDisruptionBudget({
      name: 'agent',
      namespace: 'default',
      body: {
        ...written,
        spec: { ...written.spec, minAvailable: 2 },
        status: { ...status, disruptionsAllowed: 0 },
      },
    });
    assert.equal(replaced.status?.disruptionsAllowed, 1);
    assert.equal(replaced.metadata?.generation, 2);
  });

  test('ClusterRoles and ClusterRoleBindings are cluster-scoped, Roles and RoleBindings namespaced, none has /status', async () => {
    const rule = { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] };
    await rbac.createClusterRole({ body: { metadata: { name: 'reader' }, rules: [rule] } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'default' }],
      },
    });
    await rbac.createNamespacedRole({
      namespace: 'default',
      body: { metadata: { name: 'reader' }, rules: [rule] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'default',
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'default' }],
      },
    });
    const clusterRole = await rbac.readClusterRole({ name: 'reader' });
    assert.equal(clusterRole.metadata?.namespace, undefined);
    assert.equal(clusterRole.metadata?.generation, undefined);
    assert.deepEqual(plain(clusterRole.rules), [rule]);
    assert.equal(
      (await rbac.readNamespacedRoleBinding({ name: 'reader', namespace: 'default' })).roleRef.kind,
      'Role',
    );
    const base = '/apis/rbac.authorization.k8s.io/v1';
    assert.equal((await call(server, 'GET', `${base}/clusterroles/reader/status`)).status, 404);
    assert.equal((await call(server, 'GET', `${base}/namespaces/default/roles/reader/status`)).status, 404);
    assert.equal((await call(server, 'GET', `${base}/namespaces/default/clusterroles`)).status, 404);
  });

  test('a DELETE with a protobuf DeleteOptions body (client-go typed clients, helm) honours its preconditions', async () => {
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'release' } } });
    const field = (number: number, text: string) =>
      `${String.fromCharCode((number << 3) | 2, text.length)}${text}`;
    const deleteOptions = (uid: string) => {
      const typeMeta = field(1, 'v1') + field(2, 'DeleteOptions');
      return `k8s\u0000${field(1, typeMeta)}${field(2, field(2, field(1, uid)))}`;
    };
    const path = '/api/v1/namespaces/default/secrets/release';
    const contentType = 'application/vnd.kubernetes.protobuf';
    const refused = await call(server, 'DELETE', path, { body: deleteOptions('not-the-uid'), contentType });
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.message), /Precondition failed: UID in precondition: not-the-uid/);
    const uid = (await core.readNamespacedSecret({ name: 'release', namespace: 'default' })).metadata!.uid!;
    const deleted = await call(server, 'DELETE', path, { body: deleteOptions(uid), contentType });
    assert.equal(deleted.status, 200);
    assert.equal((await call(server, 'GET', path)).status, 404);
  });
});
