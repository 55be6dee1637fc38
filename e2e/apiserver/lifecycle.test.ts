import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ApiServer, startApiServer } from './index.ts';
import { call, eventually } from './test-helpers.ts';

let server: ApiServer;

before(async () => {
  server = await startApiServer();
});
after(() => server.close());

type Meta = {
  name: string;
  uid: string;
  resourceVersion: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: unknown[];
};

function metaOf(body: Record<string, unknown>): Meta {
  return body.metadata as Meta;
}

async function create(path: string, body: Record<string, unknown>): Promise<Meta> {
  const res = await call(server, 'POST', path, { body });
  assert.equal(res.status, 201, res.text);
  return metaOf(res.body);
}

function ownedBy(owner: Meta, kind: string, apiVersion: string): Record<string, unknown> {
  return { apiVersion, kind, name: owner.name, uid: owner.uid, blockOwnerDeletion: true };
}

const exists = async (path: string): Promise<boolean> => (await call(server, 'GET', path)).status === 200;

describe('finalizers and deletionTimestamp', () => {
  test('delete of an object with finalizers sets deletionTimestamp and waits; removing the last finalizer deletes it', async () => {
    await create('/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'guarded', finalizers: ['example.com/a', 'example.com/b'] },
    });
    const del = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/guarded');
    assert.equal(del.status, 202);
    assert.ok(metaOf(del.body).deletionTimestamp);
    const adding = await call(server, 'PATCH', '/api/v1/namespaces/default/configmaps/guarded', {
      body: [{ op: 'add', path: '/metadata/finalizers/-', value: 'example.com/c' }],
      contentType: 'application/json-patch+json',
    });
    assert.equal(adding.status, 422);
    await call(server, 'PATCH', '/api/v1/namespaces/default/configmaps/guarded', {
      body: [{ op: 'remove', path: '/metadata/finalizers/0' }],
      contentType: 'application/json-patch+json',
    });
    assert.ok(await exists('/api/v1/namespaces/default/configmaps/guarded'));
    const last = await call(server, 'PATCH', '/api/v1/namespaces/default/configmaps/guarded', {
      body: { metadata: { finalizers: null } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(last.status, 200);
    assert.equal(await exists('/api/v1/namespaces/default/configmaps/guarded'), false);
  });

  test('delete preconditions on uid and resourceVersion are 409 Conflict when they do not hold', async () => {
    const meta = await create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'pre' } });
    const wrongUid = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/pre', {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'other' } },
    });
    assert.equal(wrongUid.status, 409);
    assert.match(String(wrongUid.body.message), /Precondition failed: UID in precondition: other/);
    const wrongRv = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/pre', {
      body: { preconditions: { resourceVersion: '1' } },
    });
    assert.equal(wrongRv.status, 409);
    const ok = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/pre', {
      body: { preconditions: { uid: meta.uid, resourceVersion: meta.resourceVersion } },
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(
      [ok.body.kind, ok.body.status, (ok.body.details as { uid: string }).uid],
      ['Status', 'Success', meta.uid],
      'a ConfigMap DELETE answers with a Success Status',
    );
  });

  test('a scheduled pod is deleted gracefully; a delete with grace 0 removes it', async () => {
    await create('/api/v1/namespaces/default/pods', {
      metadata: { name: 'graceful' },
      spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox' }] },
    });
    const first = await call(server, 'DELETE', '/api/v1/namespaces/default/pods/graceful');
    assert.equal(first.status, 202);
    assert.equal(
      (first.body.metadata as { deletionGracePeriodSeconds: number }).deletionGracePeriodSeconds,
      30,
    );
    assert.ok(await exists('/api/v1/namespaces/default/pods/graceful'));
    const now = await call(server, 'DELETE', '/api/v1/namespaces/default/pods/graceful?gracePeriodSeconds=0');
    assert.equal(now.status, 200);
    assert.equal(now.body.kind, 'Pod', 'a Pod DELETE answers with the deleted Pod');
    assert.equal(await exists('/api/v1/namespaces/default/pods/graceful'), false);
  });

  test('dryRun delete leaves the object in place', async () => {
    await create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'dry-delete' } });
    const res = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/dry-delete?dryRun=All');
    assert.equal(res.status, 200);
    assert.ok(await exists('/api/v1/namespaces/default/configmaps/dry-delete'));
  });

  test('deletecollection deletes what the selector selects', async () => {
    await create('/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'col-a', labels: { batch: 'x' } },
    });
    await create('/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'col-b', labels: { batch: 'x' } },
    });
    await create('/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'col-c', labels: { batch: 'y' } },
    });
    const res = await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps?labelSelector=batch%3Dx');
    assert.equal(res.status, 200);
    assert.equal((res.body.items as unknown[]).length, 2);
    assert.equal(await exists('/api/v1/namespaces/default/configmaps/col-a'), false);
    assert.ok(await exists('/api/v1/namespaces/default/configmaps/col-c'));
  });
});

describe('garbage collection of owner references', () => {
  const rs = (name: string) => ({
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
    },
  });
  const pod = (name: string, owner: Meta) => ({
    metadata: { name, ownerReferences: [ownedBy(owner, 'ReplicaSet', 'apps/v1')] },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });

  test('background: deleting the owner deletes its dependents afterwards', async () => {
    const owner = await create('/apis/apps/v1/namespaces/default/replicasets', rs('bg'));
    await create('/api/v1/namespaces/default/pods', pod('bg-1', owner));
    await create('/api/v1/namespaces/default/pods', pod('bg-2', owner));
    const res = await call(server, 'DELETE', '/apis/apps/v1/namespaces/default/replicasets/bg');
    assert.equal(res.status, 200);
    await server.controllersIdle();
    assert.equal(await exists('/api/v1/namespaces/default/pods/bg-1'), false);
    assert.equal(await exists('/api/v1/namespaces/default/pods/bg-2'), false);
  });

  test('foreground: the owner stays with deletionTimestamp until its dependents are gone', async () => {
    const owner = await create('/apis/apps/v1/namespaces/default/replicasets', rs('fg'));
    await create('/api/v1/namespaces/default/pods', {
      ...pod('fg-1', owner),
      metadata: { ...pod('fg-1', owner).metadata, finalizers: ['example.com/hold'] },
    });
    const res = await call(server, 'DELETE', '/apis/apps/v1/namespaces/default/replicasets/fg', {
      body: { propagationPolicy: 'Foreground' },
    });
    assert.equal(res.status, 202);
    assert.deepEqual(metaOf(res.body).finalizers, ['foregroundDeletion']);
    await server.controllersIdle();
    const dependent = await call(server, 'GET', '/api/v1/namespaces/default/pods/fg-1');
    assert.ok(metaOf(dependent.body).deletionTimestamp, 'dependent is being deleted');
    assert.ok(await exists('/apis/apps/v1/namespaces/default/replicasets/fg'), 'owner waits');
    await call(server, 'PATCH', '/api/v1/namespaces/default/pods/fg-1', {
      body: { metadata: { finalizers: null } },
      contentType: 'application/merge-patch+json',
    });
    await eventually(
      'the owner to go',
      async () => !(await exists('/apis/apps/v1/namespaces/default/replicasets/fg')),
    );
  });

  test('orphan: dependents stay and lose their owner reference', async () => {
    const owner = await create('/apis/apps/v1/namespaces/default/replicasets', rs('orph'));
    await create('/api/v1/namespaces/default/pods', pod('orph-1', owner));
    await call(
      server,
      'DELETE',
      '/apis/apps/v1/namespaces/default/replicasets/orph?propagationPolicy=Orphan',
    );
    await eventually(
      'the owner to go',
      async () => !(await exists('/apis/apps/v1/namespaces/default/replicasets/orph')),
    );
    const dependent = await call(server, 'GET', '/api/v1/namespaces/default/pods/orph-1');
    assert.equal(dependent.status, 200);
    assert.equal(metaOf(dependent.body).ownerReferences, undefined);
  });

  test('an object whose owners do not exist is deleted; a dangling reference beside a live owner is dropped', async () => {
    const live = await create('/apis/apps/v1/namespaces/default/replicasets', rs('live'));
    const ghost = { ...live, name: 'ghost', uid: '00000000-0000-4000-8000-000000000000' };
    await create('/api/v1/namespaces/default/pods', pod('orphaned', ghost));
    await create('/api/v1/namespaces/default/pods', {
      ...pod('half', live),
      metadata: {
        name: 'half',
        ownerReferences: [ownedBy(live, 'ReplicaSet', 'apps/v1'), ownedBy(ghost, 'ReplicaSet', 'apps/v1')],
      },
    });
    await server.controllersIdle();
    assert.equal(await exists('/api/v1/namespaces/default/pods/orphaned'), false);
    const half = await call(server, 'GET', '/api/v1/namespaces/default/pods/half');
    assert.deepEqual(
      (metaOf(half.body).ownerReferences as { uid: string }[]).map((r) => r.uid),
      [live.uid],
    );
  });

  test('deleting a namespace deletes its content, then the namespace', async () => {
    await create('/api/v1/namespaces', { metadata: { name: 'doomed' } });
    await create('/api/v1/namespaces/doomed/configmaps', { metadata: { name: 'a' } });
    await create('/api/v1/namespaces/doomed/services', {
      metadata: { name: 's' },
      spec: { ports: [{ port: 80 }] },
    });
    const res = await call(server, 'DELETE', '/api/v1/namespaces/doomed');
    assert.equal(res.status, 202);
    assert.equal((res.body.status as { phase: string }).phase, 'Terminating');
    await eventually('the namespace to go', async () => !(await exists('/api/v1/namespaces/doomed')));
    assert.equal(server.store.count('/configmaps', 'doomed'), 0);
  });
});

describe('CustomResourceDefinitions', () => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'loadbalancerippools.portico.dev' },
    spec: {
      group: 'portico.dev',
      scope: 'Cluster',
      names: {
        kind: 'LoadBalancerIPPool',
        plural: 'loadbalancerippools',
        singular: 'loadbalancerippool',
        shortNames: ['lbpool'],
      },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [{ name: 'CIDR', type: 'string', jsonPath: '.spec.cidr' }],
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };

  test('creating a CRD serves its resources, in discovery too, with the status subresource', async () => {
    await create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    await server.controllersIdle();
    const established = await call(
      server,
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/loadbalancerippools.portico.dev',
    );
    const conditions = (established.body.status as { conditions: { type: string; status: string }[] })
      .conditions;
    assert.ok(conditions.some((c) => c.type === 'Established' && c.status === 'True'));
    const groups = await call(server, 'GET', '/apis');
    assert.ok((groups.body.groups as { name: string }[]).some((g) => g.name === 'portico.dev'));
    const resources = await call(server, 'GET', '/apis/portico.dev/v1alpha1');
    assert.deepEqual(
      (resources.body.resources as { name: string }[]).map((r) => r.name),
      ['loadbalancerippools', 'loadbalancerippools/status'],
    );
    const pool = await call(server, 'POST', '/apis/portico.dev/v1alpha1/loadbalancerippools', {
      body: {
        apiVersion: 'portico.dev/v1alpha1',
        kind: 'LoadBalancerIPPool',
        metadata: { name: 'pool' },
        spec: { cidr: '198.18.0.0/24' },
        status: { used: 5 },
      },
    });
    assert.equal(pool.status, 201);
    assert.equal(pool.body.status, undefined, 'status is dropped on create');
    assert.equal(metaOf(pool.body).name, 'pool');
    const status = await call(server, 'PATCH', '/apis/portico.dev/v1alpha1/loadbalancerippools/pool/status', {
      body: { status: { used: 1 }, spec: { cidr: 'changed' } },
      contentType: 'application/merge-patch+json',
    });
    assert.deepEqual(status.body.status, { used: 1 });
    assert.deepEqual(status.body.spec, { cidr: '198.18.0.0/24' });
    const smp = await call(server, 'PATCH', '/apis/portico.dev/v1alpha1/loadbalancerippools/pool', {
      body: { spec: { cidr: 'x' } },
      contentType: 'application/strategic-merge-patch+json',
    });
    assert.equal(smp.status, 415);
  });

  test('a CRD whose name is not <plural>.<group> is 422', async () => {
    const res = await call(server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      body: { ...crd, metadata: { name: 'wrong.portico.dev' } },
    });
    assert.equal(res.status, 422);
    assert.match(
      String(res.body.message),
      /metadata.name: Invalid value: "wrong.portico.dev": must be spec.names.plural\+"."\+spec.group/,
    );
  });

  test('namespaced custom resources are served under namespaces', async () => {
    await create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      ...crd,
      metadata: { name: 'widgets.example.com' },
      spec: {
        ...crd.spec,
        group: 'example.com',
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets' },
      },
    });
    const res = await call(server, 'POST', '/apis/example.com/v1alpha1/namespaces/default/widgets', {
      body: { metadata: { name: 'w' }, spec: { size: 1 } },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal((res.body.metadata as { generation: number }).generation, 1);
    const list = await call(server, 'GET', '/apis/example.com/v1alpha1/widgets');
    assert.equal((list.body.items as unknown[]).length, 1);
  });

  test('custom resources are pruned, defaulted and validated by the CRD schema', async () => {
    await create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      ...crd,
      metadata: { name: 'gadgets.example.com' },
      spec: {
        ...crd.spec,
        group: 'example.com',
        names: { kind: 'Gadget', plural: 'gadgets' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    required: ['size'],
                    properties: {
                      size: { type: 'integer', minimum: 1 },
                      color: { type: 'string', default: 'blue' },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    });
    const ok = await call(server, 'POST', '/apis/example.com/v1/gadgets', {
      body: { metadata: { name: 'g' }, spec: { size: 2, sise: 3 }, junk: true },
    });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.body.spec, { size: 2, color: 'blue' });
    assert.equal(ok.body.junk, undefined);
    const bad = await call(server, 'POST', '/apis/example.com/v1/gadgets', {
      body: { metadata: { name: 'h' }, spec: { size: 0 } },
    });
    assert.equal(bad.status, 422);
    assert.equal(
      bad.body.message,
      'Gadget.example.com "h" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1',
    );
  });

  test('every served version of a CRD reaches the same objects, each with its own apiVersion', async () => {
    await create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      ...crd,
      metadata: { name: 'dials.example.com' },
      spec: {
        ...crd.spec,
        group: 'example.com',
        names: { kind: 'Dial', plural: 'dials' },
        versions: [
          { name: 'v1beta1', served: true, storage: false, schema: crd.spec.versions[0]!.schema },
          { name: 'v1', served: true, storage: true, schema: crd.spec.versions[0]!.schema },
        ],
      },
    });
    const created = await call(server, 'POST', '/apis/example.com/v1beta1/dials', {
      body: { apiVersion: 'example.com/v1beta1', kind: 'Dial', metadata: { name: 'd' }, spec: { level: 3 } },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.apiVersion, 'example.com/v1beta1');
    const viaV1 = await call(server, 'GET', '/apis/example.com/v1/dials/d');
    assert.equal(viaV1.body.apiVersion, 'example.com/v1');
    assert.deepEqual(viaV1.body.spec, { level: 3 });
    assert.equal(server.store.get('example.com/dials', '', 'd')?.apiVersion, 'example.com/v1');
  });

  test('deleting the CRD stops serving its resources and removes them', async () => {
    await call(
      server,
      'DELETE',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com',
    );
    assert.equal((await call(server, 'GET', '/apis/example.com/v1alpha1/widgets')).status, 404);
    assert.equal(server.store.count('example.com/widgets'), 0);
  });
});

describe('snapshot persistence', () => {
  test('with snapshotIntervalMs the snapshot is written while the server runs', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-snapshot-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const snapshotPath = join(dir, 'state.json');
    const running = await startApiServer({ dataDir: dir, snapshotPath, snapshotIntervalMs: 50 });
    try {
      await call(running, 'POST', '/api/v1/namespaces/default/configmaps', {
        body: { metadata: { name: 'early' } },
      });
      await eventually('the snapshot to hold the new object', async () => {
        try {
          return (await readFile(snapshotPath, 'utf8')).includes('"early"');
        } catch {
          return false;
        }
      });
    } finally {
      await running.close();
    }
  });

  test('objects, resourceVersions and CRDs survive a restart from a snapshot', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-snapshot-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const snapshotPath = join(dir, 'state.json');
    const first = await startApiServer({ dataDir: dir, snapshotPath });
    let created: Record<string, unknown>;
    try {
      const res = await call(first, 'POST', '/api/v1/namespaces/default/configmaps', {
        body: { metadata: { name: 'kept' }, data: { a: '1' } },
      });
      created = res.body;
    } finally {
      await first.close();
    }
    const second = await startApiServer({ dataDir: dir, snapshotPath });
    try {
      assert.equal(second.token, first.token, 'a restarted server keeps its token');
      const res = await call(second, 'GET', '/api/v1/namespaces/default/configmaps/kept');
      assert.deepEqual(res.body, created);
      const next = await call(second, 'POST', '/api/v1/namespaces/default/configmaps', {
        body: { metadata: { name: 'next' } },
      });
      assert.ok(Number(metaOf(next.body).resourceVersion) > Number(metaOf(created).resourceVersion));
      const stale = await call(
        second,
        'GET',
        `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1`,
      );
      assert.match(stale.text, /"code":410/);
    } finally {
      await second.close();
    }
  });
});
