import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { type ApiServer, startApiServer } from './index.ts';
import { call, eventually, kubeConfigFor, openWatch } from './test-helpers.ts';

function pod(name: string): object {
  return { metadata: { name }, spec: { containers: [{ name: 'c', image: 'nginx' }] } };
}

function binding(name: string, node: string, extra: Record<string, unknown> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name, ...extra },
    target: { kind: 'Node', name: node },
  };
}

describe('pods/binding subresource', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  test('POST a Binding sets spec.nodeName, the annotations and PodScheduled in one write', async () => {
    await call(server, 'POST', '/api/v1/namespaces/default/pods', { body: pod('one') });
    const before = server.store.get('/pods', 'default', 'one')!;
    const watch = openWatch(
      server,
      `/api/v1/namespaces/default/pods?watch=true&resourceVersion=${(before.metadata as { resourceVersion: string }).resourceVersion}`,
    );
    const res = await call(server, 'POST', '/api/v1/namespaces/default/pods/one/binding', {
      body: binding('one', 'node-a', { annotations: { 'scheduled-by': 'test' } }),
    });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      code: 201,
    });
    const bound = server.store.get('/pods', 'default', 'one')!;
    assert.equal((bound.spec as { nodeName: string }).nodeName, 'node-a');
    assert.equal(
      (bound.metadata as { annotations: Record<string, string> }).annotations['scheduled-by'],
      'test',
    );
    const conditions = (bound.status as { conditions: { type: string; status: string }[] }).conditions;
    assert.deepEqual(
      conditions.filter((c) => c.type === 'PodScheduled').map((c) => c.status),
      ['True'],
    );
    await eventually('the binding reaches the watch', () => watch.events.length > 0);
    watch.stop();
    await watch.closed;
    assert.equal(watch.events.length, 1, 'one write, one event');
    assert.equal(watch.events[0]!.type, 'MODIFIED');
    assert.equal((watch.events[0]!.object.spec as { nodeName: string }).nodeName, 'node-a');
  });

  test('binding a pod that is already bound is 409 Conflict worded as upstream', async () => {
    await call(server, 'POST', '/api/v1/namespaces/default/pods', { body: pod('two') });
    assert.equal(
      (
        await call(server, 'POST', '/api/v1/namespaces/default/pods/two/binding', {
          body: binding('two', 'node-a'),
        })
      ).status,
      201,
    );
    const again = await call(server, 'POST', '/api/v1/namespaces/default/pods/two/binding', {
      body: binding('two', 'node-b'),
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.reason, 'Conflict');
    assert.equal(
      again.body.message,
      'Operation cannot be fulfilled on pods/binding "two": pod two is already assigned to node "node-a"',
    );
    assert.equal(
      (server.store.get('/pods', 'default', 'two')!.spec as { nodeName: string }).nodeName,
      'node-a',
    );
  });

  test('client-node createNamespacedPodBinding binds; missing pods are 404; bad bindings are rejected', async () => {
    const api = kubeConfigFor(server).makeApiClient(CoreV1Api);
    await api.createNamespacedPod({ namespace: 'default', body: pod('three') });
    await api.createNamespacedPodBinding({
      name: 'three',
      namespace: 'default',
      body: { metadata: { name: 'three' }, target: { kind: 'Node', name: 'node-c' } },
    });
    const read = await api.readNamespacedPod({ name: 'three', namespace: 'default' });
    assert.equal(read.spec?.nodeName, 'node-c');

    const missing = await call(server, 'POST', '/api/v1/namespaces/default/pods/ghost/binding', {
      body: binding('ghost', 'node-a'),
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'pods "ghost" not found');

    await call(server, 'POST', '/api/v1/namespaces/default/pods', { body: pod('four') });
    const noNode = await call(server, 'POST', '/api/v1/namespaces/default/pods/four/binding', {
      body: { metadata: { name: 'four' }, target: {} },
    });
    assert.equal(noNode.status, 422);
    assert.equal(noNode.body.message, 'Binding "four" is invalid: target.name: Required value');
    const otherName = await call(server, 'POST', '/api/v1/namespaces/default/pods/four/binding', {
      body: binding('five', 'node-a'),
    });
    assert.equal(otherName.status, 400);
    const get = await call(server, 'GET', '/api/v1/namespaces/default/pods/four/binding');
    assert.equal(get.status, 405);
  });

  test('discovery lists pods/binding with the create verb', async () => {
    const res = await call(server, 'GET', '/api/v1');
    const resources = res.body.resources as { name: string; kind: string; verbs: string[] }[];
    assert.deepEqual(
      resources.find((r) => r.name === 'pods/binding'),
      { name: 'pods/binding', singularName: '', namespaced: true, kind: 'Binding', verbs: ['create'] },
    );
  });
});
