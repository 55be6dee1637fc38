import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type CoreV1Event, type V1ConfigMap } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import { EventRecorder } from './events.ts';
import { kubeConfigFor, startTestApiServer, testLogger } from './testing/harness.ts';

describe('EventRecorder against the local API server', () => {
  let server: ApiServer;
  let core: CoreV1Api;
  let recorder: EventRecorder;
  let subject: V1ConfigMap;
  let clock = Date.parse('2026-03-01T10:00:00Z');

  before(async () => {
    server = await startTestApiServer();
    const kubeConfig = kubeConfigFor(server.kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    subject = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'subject' }, data: {} },
    });
    subject = { ...subject, apiVersion: 'v1', kind: 'ConfigMap' };
    recorder = new EventRecorder({
      kubeConfig,
      component: 'test-controller',
      instance: 'replica-1',
      logger: testLogger(),
      now: () => new Date(clock),
    });
  });

  after(async () => {
    await server?.close();
  });

  async function eventsAbout(name: string): Promise<CoreV1Event[]> {
    const list = await core.listNamespacedEvent({ namespace: 'default' });
    return list.items.filter((event) => event.involvedObject.name === name);
  }

  test('records an Event that points at the object', async () => {
    await recorder.event(subject, 'Normal', 'Synced', 'first sync done');
    const [event, ...rest] = await eventsAbout('subject');
    assert.equal(rest.length, 0);
    assert.ok(event);
    assert.deepEqual(
      [
        event.type,
        event.reason,
        event.message,
        event.count,
        event.source?.component,
        event.reportingInstance,
      ],
      ['Normal', 'Synced', 'first sync done', 1, 'test-controller', 'replica-1'],
    );
    assert.deepEqual(
      [event.involvedObject.kind, event.involvedObject.apiVersion, event.involvedObject.uid],
      ['ConfigMap', 'v1', subject.metadata?.uid],
    );
    assert.match(event.metadata.name ?? '', /^subject\.[0-9a-f]+$/);
  });

  test('repeats bump count and lastTimestamp of the same Event, also when fired concurrently', async () => {
    clock += 60_000;
    await Promise.all([
      recorder.event(subject, 'Warning', 'AllocationFailed', 'range full'),
      recorder.event(subject, 'Warning', 'AllocationFailed', 'range full'),
      recorder.event(subject, 'Warning', 'AllocationFailed', 'range full'),
    ]);
    clock += 60_000;
    await recorder.event(subject, 'Warning', 'AllocationFailed', 'range full');
    const failures = (await eventsAbout('subject')).filter((event) => event.reason === 'AllocationFailed');
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.count, 4);
    assert.equal(new Date(failures[0]!.lastTimestamp!).getTime(), clock);
    assert.equal(new Date(failures[0]!.firstTimestamp!).getTime(), clock - 60_000);
  });

  test('a different message or type is a different Event', async () => {
    await recorder.event(subject, 'Warning', 'AllocationFailed', 'range full, 0 of 254 free');
    await recorder.event(subject, 'Normal', 'AllocationFailed', 'range full');
    const failures = (await eventsAbout('subject')).filter((event) => event.reason === 'AllocationFailed');
    assert.equal(failures.length, 3);
  });

  test('an Event deleted behind our back (TTL) is recreated on the next repeat', async () => {
    await recorder.event(subject, 'Normal', 'Expiring', 'will be deleted');
    const [expiring] = (await eventsAbout('subject')).filter((event) => event.reason === 'Expiring');
    await core.deleteNamespacedEvent({ namespace: 'default', name: expiring!.metadata.name! });
    await recorder.event(subject, 'Normal', 'Expiring', 'will be deleted');
    const recreated = (await eventsAbout('subject')).filter((event) => event.reason === 'Expiring');
    assert.equal(recreated.length, 1);
    assert.equal(recreated[0]!.count, 1);
    assert.notEqual(recreated[0]!.metadata.name, expiring!.metadata.name);
  });

  test('a failing API server never reaches the caller', async () => {
    server.faults.failNext(1, { code: 500 });
    await assert.doesNotReject(recorder.event(subject, 'Warning', 'Unlucky', 'dropped'));
    assert.equal((await eventsAbout('subject')).filter((event) => event.reason === 'Unlucky').length, 0);
    await recorder.event(subject, 'Warning', 'Unlucky', 'dropped');
    assert.equal((await eventsAbout('subject')).filter((event) => event.reason === 'Unlucky').length, 1);
  });

  test('cluster-scoped objects get their Events in the default namespace', async () => {
    await recorder.event(
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' } },
      'Normal',
      'Seen',
      'hello',
    );
    const [event] = await eventsAbout('node-a');
    assert.equal(event?.metadata.namespace, 'default');
    assert.equal(event?.involvedObject.kind, 'Node');
  });
});
