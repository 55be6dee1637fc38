import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import {
  POD_LABEL_INDEX,
  podForEndpoints,
  podLabelIndexValues,
  podsSelectedByService,
  SERVICE_SELECTOR_INDEX,
  serviceKeysForPodUpdate,
  serviceKeysSelectingPod,
  serviceSelectorIndexValues,
} from './endpoint-informers.ts';
import { planEndpoints } from './endpoints/plan.ts';
import { planEndpointSlices } from './endpointslice/plan.ts';
import { makeNodes, makePod, makeService, type PodInput } from './endpointslice/test-fixtures.ts';
import { IndexedStore } from './runtime/informer.ts';

function serviceStore(services: V1Service[]): IndexedStore<V1Service> {
  const store = new IndexedStore<V1Service>({ [SERVICE_SELECTOR_INDEX]: serviceSelectorIndexValues });
  for (const service of services) store.upsert(service);
  return store;
}

function withLabels(pod: V1Pod, labels: Record<string, string>, resourceVersion: string): V1Pod {
  return { ...pod, metadata: { ...pod.metadata, labels, resourceVersion } };
}

describe('Service selector index', () => {
  const services = serviceStore([
    makeService({ name: 'web', selector: { app: 'web' } }),
    makeService({ name: 'web-canary', selector: { app: 'web', track: 'canary' } }),
    makeService({ name: 'db', selector: { app: 'db' } }),
    makeService({ name: 'other-ns', namespace: 'prod', selector: { app: 'web' } }),
    makeService({ name: 'manual', selector: undefined }),
  ]);

  test('a pod finds exactly the Services whose whole selector it matches, in its namespace', () => {
    const stable = makePod({ name: 'a', labels: { app: 'web', track: 'stable' } });
    const canary = makePod({ name: 'b', labels: { app: 'web', track: 'canary' } });
    assert.deepEqual([...serviceKeysSelectingPod(services, stable)], ['default/web']);
    assert.deepEqual([...serviceKeysSelectingPod(services, canary)].sort(), [
      'default/web',
      'default/web-canary',
    ]);
    assert.deepEqual([...serviceKeysSelectingPod(services, makePod({ name: 'c', labels: {} }))], []);
  });

  test('selector-less Services are not indexed', () => {
    assert.deepEqual(serviceSelectorIndexValues(makeService({ selector: undefined })), []);
  });

  test('a label change enqueues the Services the pod left and joined, not those it stayed in', () => {
    const before = withLabels(makePod({ name: 'a' }), { app: 'web', track: 'canary' }, '1');
    const after = withLabels(before, { app: 'db' }, '2');
    assert.deepEqual([...serviceKeysForPodUpdate(services, before, after)].sort(), [
      'default/db',
      'default/web',
      'default/web-canary',
    ]);
    const dropTrack = withLabels(before, { app: 'web' }, '3');
    assert.deepEqual([...serviceKeysForPodUpdate(services, before, dropTrack)], ['default/web-canary']);
  });

  test('a readiness change enqueues every Service of the pod; a resync or an irrelevant change none', () => {
    const ready = withLabels(makePod({ name: 'a', ready: true }), { app: 'web', track: 'canary' }, '1');
    const unready = {
      ...withLabels(makePod({ name: 'a', ready: false }), { app: 'web', track: 'canary' }, '2'),
    };
    assert.deepEqual([...serviceKeysForPodUpdate(services, ready, unready)].sort(), [
      'default/web',
      'default/web-canary',
    ]);
    assert.equal(serviceKeysForPodUpdate(services, ready, ready).size, 0);
    const annotated = {
      ...ready,
      metadata: { ...ready.metadata, resourceVersion: '3', annotations: { a: 'b' } },
    };
    assert.equal(serviceKeysForPodUpdate(services, ready, annotated).size, 0);
  });

  test('a Service finds its pods through its smallest selector bucket', () => {
    const pods = new IndexedStore<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndexValues });
    for (let i = 0; i < 5; i++)
      pods.upsert(makePod({ name: `web-${i}`, labels: { app: 'web', track: 'stable' } }));
    pods.upsert(makePod({ name: 'canary', labels: { app: 'web', track: 'canary' } }));
    const canary = makeService({ name: 'web-canary', selector: { app: 'web', track: 'canary' } });
    assert.deepEqual(
      podsSelectedByService(pods, canary).map((pod) => pod.metadata?.name),
      ['canary'],
    );
    assert.equal(podsSelectedByService(pods, makeService({ selector: { app: 'web' } })).length, 6);
    assert.deepEqual(podsSelectedByService(pods, makeService({ selector: undefined })), []);
  });
});

describe('podForEndpoints', () => {
  /** A pod as a kubelet reports it, with the bulk a running pod carries beside what endpoints need. */
  function runningPod(name: string, input: Omit<PodInput, 'name'>): V1Pod {
    const pod = makePod({ ...input, name });
    pod.metadata!.managedFields = [{ manager: 'kubelet', operation: 'Update', subresource: 'status' }];
    pod.metadata!.annotations = { 'example.com/owner': 'team-a' };
    pod.metadata!.resourceVersion = '42';
    pod.spec!.containers[0] = {
      ...pod.spec!.containers[0]!,
      image: 'registry.k8s.io/e2e-test-images/agnhost:2.53',
      env: [{ name: 'MODE', value: 'serve' }],
      resources: { requests: { cpu: '10m' } },
    };
    pod.spec!.initContainers = [
      {
        name: 'proxy',
        image: 'envoy',
        restartPolicy: 'Always',
        ports: [{ name: 'metrics', containerPort: 9901 }],
      },
      { name: 'setup', image: 'busybox', ports: [{ name: 'metrics', containerPort: 1 }] },
    ];
    pod.spec!.volumes = [{ name: 'data', emptyDir: {} }];
    pod.spec!.tolerations = [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists' }];
    pod.status!.hostIP = '198.19.255.1';
    pod.status!.containerStatuses = [
      { name: 'app', image: 'agnhost', imageID: 'sha256:0', ready: true, restartCount: 0 },
    ];
    pod.status!.conditions!.push({ type: 'PodScheduled', status: 'True' });
    return pod;
  }

  const pods = [
    runningPod('ready', {
      ips: ['198.18.0.1', 'fd00::1'],
      containerPorts: [{ name: 'http', containerPort: 8080 }],
    }),
    runningPod('unready', { ips: ['198.18.0.2'], ready: false, node: 'node-b' }),
    runningPod('leaving', { ips: ['198.18.0.3'], deleting: true }),
    runningPod('done', { ips: ['198.18.0.4'], phase: 'Succeeded' }),
    runningPod('dns', { ips: ['198.18.0.5'], hostname: 'dns-0', subdomain: 'web' }),
    runningPod('no-ip', {}),
  ];
  const trimmed = () => pods.map((pod) => podForEndpoints(structuredClone(pod)));

  test('keeps metadata, placement, container ports, IPs and conditions; drops the rest', () => {
    const pod = podForEndpoints(structuredClone(pods[0]!));
    assert.deepEqual(pod.metadata, {
      name: 'ready',
      namespace: 'default',
      uid: 'uid-ready',
      labels: { app: 'web' },
      annotations: { 'example.com/owner': 'team-a' },
      resourceVersion: '42',
    });
    assert.deepEqual(pod.spec, {
      containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }],
      initContainers: [
        { name: 'proxy', restartPolicy: 'Always', ports: [{ name: 'metrics', containerPort: 9901 }] },
        { name: 'setup', ports: [{ name: 'metrics', containerPort: 1 }] },
      ],
      nodeName: 'node-a',
    });
    assert.deepEqual(pod.status, {
      phase: 'Running',
      podIP: '198.18.0.1',
      podIPs: [{ ip: '198.18.0.1' }, { ip: 'fd00::1' }],
      conditions: [
        { type: 'Ready', status: 'True' },
        { type: 'PodScheduled', status: 'True' },
      ],
    });
  });

  test('EndpointSlices and Endpoints planned from trimmed pods equal those planned from whole pods', () => {
    const nodes = makeNodes({ 'node-a': 'zone-a', 'node-b': 'zone-b' });
    const services = [
      makeService({
        ports: [
          { name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' },
          { name: 'metrics', port: 9901, protocol: 'TCP', targetPort: 'metrics' },
        ],
      }),
      makeService({ name: 'web', clusterIP: 'None', publishNotReadyAddresses: true }),
      makeService({ ipFamilies: ['IPv6'], clusterIP: 'fd00:96::10' }),
    ];
    for (const service of services) {
      const fromWholePods = planEndpointSlices(service, pods, nodes, []);
      assert.ok(fromWholePods.create.some((slice) => (slice.endpoints ?? []).length > 0));
      assert.deepEqual(planEndpointSlices(service, trimmed(), nodes, []), fromWholePods);
      assert.deepEqual(planEndpoints(service, trimmed(), undefined), planEndpoints(service, pods, undefined));
    }
  });
});
