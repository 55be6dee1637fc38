import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { LABEL_HEADLESS_SERVICE, LABEL_SERVICE_PROXY_NAME } from '../../api/labels.ts';
import { ANNOTATION_IPVS_SCHEDULER } from './service.ts';
import { makeService, makeSlice, TEST_NODE } from './test-fixtures.ts';
import { ChangeTracker } from './tracker.ts';
import type { IPFamily, ServicePortState } from './types.ts';

function portsOf(
  services: V1Service[],
  slices: V1EndpointSlice[],
  options: { family?: IPFamily; proxyName?: string } = {},
): ServicePortState[] {
  const tracker = new ChangeTracker({ node: TEST_NODE, proxyName: options.proxyName ?? '' });
  for (const service of services) tracker.updateService(service);
  for (const slice of slices) tracker.updateEndpointSlice(slice);
  return [...tracker.snapshot().desired[options.family ?? 'IPv4'].servicePorts];
}

const hostPorts = (endpoints: readonly { hostPort: string }[]) =>
  endpoints.map((endpoint) => endpoint.hostPort);

describe('desired state from Services', () => {
  test('a ClusterIP Service port carries its VIP, protocol and ready endpoints', () => {
    const [port] = portsOf(
      [makeService('web')],
      [
        makeSlice('web', [
          { ip: '10.0.0.2', node: 'node-b' },
          { ip: '10.0.0.1', node: 'node-a' },
        ]),
      ],
    );
    assert.equal(port!.name, 'default/web:http');
    assert.equal(port!.serviceKey, 'default/web');
    assert.equal(port!.clusterIP, '10.96.0.10');
    assert.equal(port!.protocol, 'TCP');
    assert.equal(port!.port, 80);
    assert.equal(port!.nodePort, 0);
    assert.equal(port!.affinityTimeoutSeconds, null);
    assert.deepEqual(hostPorts(port!.endpoints), ['10.0.0.1:8080', '10.0.0.2:8080']);
    assert.deepEqual(hostPorts(port!.clusterEndpoints), ['10.0.0.1:8080', '10.0.0.2:8080']);
    assert.deepEqual(
      port!.endpoints.map((endpoint) => endpoint.isLocal),
      [true, false],
    );
    assert.ok(Object.isFrozen(port) && Object.isFrozen(port!.endpoints[0]));
  });

  test('an unnamed port is named ns/name, as upstream ServicePortName', () => {
    const [port] = portsOf(
      [makeService('plain', { ports: [{ port: 8080, protocol: 'TCP', targetPort: 80 }] })],
      [makeSlice('plain', [{ ip: '10.0.0.1' }], { ports: [{ name: '', port: 80 }] })],
    );
    assert.equal(port!.name, 'default/plain');
    assert.deepEqual(hostPorts(port!.endpoints), ['10.0.0.1:80']);
  });

  test('headless and ExternalName Services are skipped', () => {
    assert.deepEqual(portsOf([makeService('headless', { clusterIP: 'None', clusterIPs: ['None'] })], []), []);
    assert.deepEqual(
      portsOf([makeService('ext', { type: 'ExternalName', externalName: 'example.com', clusterIP: '' })], []),
      [],
    );
  });

  test('service-proxy-name: another proxy’s Services are skipped, ours are handled', () => {
    const claimed = makeService('claimed', {}, { labels: { [LABEL_SERVICE_PROXY_NAME]: 'other-proxy' } });
    const ours = makeService(
      'ours',
      { clusterIP: '10.96.0.11' },
      { labels: { [LABEL_SERVICE_PROXY_NAME]: 'portico' } },
    );
    assert.deepEqual(
      portsOf([claimed, ours], []).map((port) => port.name),
      [],
    );
    assert.deepEqual(
      portsOf([claimed, ours], [], { proxyName: 'portico' }).map((port) => port.name),
      ['default/ours:http'],
    );
  });

  test('slices labelled headless are ignored', () => {
    const [port] = portsOf(
      [makeService('web')],
      [makeSlice('web', [{ ip: '10.0.0.1' }], { labels: { [LABEL_HEADLESS_SERVICE]: '' } })],
    );
    assert.deepEqual(port!.endpoints, []);
    assert.equal(port!.hasEndpoints, false);
  });

  test('slices carrying another proxy’s service-proxy-name label are ignored, ours are used', () => {
    const claimed = { [LABEL_SERVICE_PROXY_NAME]: 'other-proxy' };
    const [port] = portsOf(
      [makeService('web')],
      [makeSlice('web', [{ ip: '10.0.0.1' }], { labels: claimed })],
    );
    assert.deepEqual(port!.endpoints, []);
    const ours = { [LABEL_SERVICE_PROXY_NAME]: 'portico' };
    const [handled] = portsOf(
      [makeService('web', {}, { labels: ours })],
      [makeSlice('web', [{ ip: '10.0.0.1' }], { labels: ours })],
      { proxyName: 'portico' },
    );
    assert.deepEqual(hostPorts(handled!.endpoints), ['10.0.0.1:8080']);
  });

  test('NodePort, externalIPs, LB ingress (VIP only), source ranges and affinity are taken per family', () => {
    const service = makeService(
      'lb',
      {
        type: 'LoadBalancer',
        clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
        ipFamilies: ['IPv4', 'IPv6'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080, targetPort: 8080 }],
        externalIPs: ['198.18.5.5', 'fd00:198:18::5'],
        loadBalancerSourceRanges: [' 198.18.7.0/24', 'fd00:1::/64'],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        sessionAffinity: 'ClientIP',
      },
      { loadBalancerIPs: ['198.18.100.1', 'fd00:198:18:100::1'] },
    );
    service.status!.loadBalancer!.ingress!.push({ ip: '198.18.100.2', ipMode: 'Proxy' });
    const [v4] = portsOf([service], []);
    assert.equal(v4!.nodePort, 30080);
    assert.deepEqual(v4!.externalIPs, ['198.18.5.5']);
    assert.deepEqual(v4!.loadBalancerIPs, ['198.18.100.1']);
    assert.deepEqual(v4!.loadBalancerSourceRanges, ['198.18.7.0/24']);
    assert.equal(v4!.externalPolicyLocal, true);
    assert.equal(v4!.healthCheckNodePort, 32000);
    assert.equal(v4!.affinityTimeoutSeconds, 10_800);
    const [v6] = portsOf([service], [], { family: 'IPv6' });
    assert.equal(v6!.clusterIP, 'fd00:10:96::10');
    assert.deepEqual(v6!.externalIPs, ['fd00:198:18::5']);
    assert.deepEqual(v6!.loadBalancerIPs, ['fd00:198:18:100::1']);
    assert.deepEqual(v6!.loadBalancerSourceRanges, ['fd00:1::/64']);
  });

  test('a single-stack Service has no state in the other family', () => {
    assert.deepEqual(portsOf([makeService('web')], [], { family: 'IPv6' }), []);
  });
});

describe('endpoints from EndpointSlices', () => {
  test('slices of one Service are merged and deduplicated; the port is resolved by name and protocol', () => {
    const service = makeService('multi', {
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      ],
    });
    const ports = [
      { name: 'http', port: 8080 },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ];
    const oldPods = makeSlice('multi', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: false }], {
      name: 'multi-1',
      ports,
    });
    const newPods = makeSlice('multi', [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }], {
      name: 'multi-2',
      ports: [{ name: 'http', port: 9090 }],
    });
    const [dns, http] = portsOf([service], [oldPods, newPods]);
    assert.equal(dns!.name, 'default/multi:dns');
    assert.deepEqual(hostPorts(dns!.clusterEndpoints), ['10.0.0.1:5353']);
    assert.deepEqual(hostPorts(http!.clusterEndpoints), ['10.0.0.1:8080', '10.0.0.2:9090', '10.0.0.3:9090']);
  });

  test('an endpoint listed twice keeps its ready copy', () => {
    const [port] = portsOf(
      [makeService('web')],
      [
        makeSlice('web', [{ ip: '10.0.0.1', ready: true }], { name: 'web-1' }),
        makeSlice('web', [{ ip: '10.0.0.1', ready: false }], { name: 'web-2' }),
      ],
    );
    assert.deepEqual(hostPorts(port!.clusterEndpoints), ['10.0.0.1:8080']);
  });

  test('only ready endpoints serve; serving-terminating ones only when none is ready', () => {
    const slice = (second: { ready: boolean }) =>
      makeSlice('web', [
        { ip: '10.0.0.1', ready: false, serving: true, terminating: true },
        { ip: '10.0.0.2', ready: second.ready, serving: second.ready },
        { ip: '10.0.0.3', ready: false, serving: false, terminating: true },
      ]);
    const [withReady] = portsOf([makeService('web')], [slice({ ready: true })]);
    assert.deepEqual(hostPorts(withReady!.clusterEndpoints), ['10.0.0.2:8080']);
    const [onlyTerminating] = portsOf([makeService('web')], [slice({ ready: false })]);
    assert.deepEqual(hostPorts(onlyTerminating!.clusterEndpoints), ['10.0.0.1:8080']);
    assert.equal(onlyTerminating!.hasEndpoints, true);
    const [none] = portsOf([makeService('web')], [makeSlice('web', [{ ip: '10.0.0.9', ready: false }])]);
    assert.equal(none!.hasEndpoints, false);
  });

  test('externalTrafficPolicy Local: local endpoints fall back to local serving-terminating ones on their own', () => {
    const service = makeService('etp', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
    });
    const [port] = portsOf(
      [service],
      [
        makeSlice('etp', [
          { ip: '10.0.0.1', node: 'node-a', ready: false, serving: true, terminating: true },
          { ip: '10.0.0.2', node: 'node-b' },
        ]),
      ],
    );
    assert.deepEqual(hostPorts(port!.clusterEndpoints), ['10.0.0.2:8080']);
    assert.deepEqual(hostPorts(port!.localEndpoints), ['10.0.0.1:8080']);
  });

  test('internalTrafficPolicy Local without external access uses no cluster endpoints', () => {
    const [port] = portsOf(
      [makeService('itp', { internalTrafficPolicy: 'Local' })],
      [
        makeSlice('itp', [
          { ip: '10.0.0.1', node: 'node-a' },
          { ip: '10.0.0.2', node: 'node-b' },
        ]),
      ],
    );
    assert.deepEqual(port!.clusterEndpoints, []);
    assert.deepEqual(hostPorts(port!.localEndpoints), ['10.0.0.1:8080']);
    assert.equal(port!.hasEndpoints, true);
  });

  test('zone hints narrow cluster endpoints only when every ready endpoint has them', () => {
    const service = makeService('topo', { trafficDistribution: 'PreferClose' });
    const hinted = makeSlice('topo', [
      { ip: '10.0.0.1', zone: 'zone-a', forZones: ['zone-a'] },
      { ip: '10.0.0.2', zone: 'zone-b', forZones: ['zone-b'] },
      { ip: '10.0.0.3', zone: 'zone-a', forZones: ['zone-a'] },
    ]);
    assert.deepEqual(hostPorts(portsOf([service], [hinted])[0]!.clusterEndpoints), [
      '10.0.0.1:8080',
      '10.0.0.3:8080',
    ]);
    const halfHinted = makeSlice('topo', [{ ip: '10.0.0.1', forZones: ['zone-a'] }, { ip: '10.0.0.2' }]);
    assert.deepEqual(hostPorts(portsOf([service], [halfHinted])[0]!.clusterEndpoints), [
      '10.0.0.1:8080',
      '10.0.0.2:8080',
    ]);
    const otherZones = makeSlice('topo', [{ ip: '10.0.0.2', forZones: ['zone-b'] }]);
    assert.deepEqual(hostPorts(portsOf([service], [otherZones])[0]!.clusterEndpoints), ['10.0.0.2:8080']);
  });

  test('node hints (PreferSameNode) win over zone hints', () => {
    const service = makeService('node', { trafficDistribution: 'PreferSameNode' });
    const slice = makeSlice('node', [
      { ip: '10.0.0.1', forZones: ['zone-a'], forNodes: ['node-a'] },
      { ip: '10.0.0.2', forZones: ['zone-a'], forNodes: ['node-b'] },
    ]);
    assert.deepEqual(hostPorts(portsOf([service], [slice])[0]!.clusterEndpoints), ['10.0.0.1:8080']);
  });

  test('IPv6 slices feed the IPv6 state, bracketed in ip:port', () => {
    const service = makeService('v6', { clusterIP: 'fd00:10:96::10', clusterIPs: ['fd00:10:96::10'] });
    const [port] = portsOf([service], [makeSlice('v6', [{ ip: 'fd00:10:244::1' }])], { family: 'IPv6' });
    assert.deepEqual(hostPorts(port!.clusterEndpoints), ['[fd00:10:244::1]:8080']);
  });
});

describe('change tracking', () => {
  test('records changed Services once per snapshot and ignores no-op updates', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(makeService('a', { clusterIP: '10.96.0.1' }));
    tracker.updateService(makeService('b', { clusterIP: '10.96.0.2' }));
    tracker.updateEndpointSlice(makeSlice('a', [{ ip: '10.0.0.1' }]));
    assert.deepEqual([...tracker.snapshot().changedServices].sort(), ['default/a', 'default/b']);

    tracker.updateService(makeService('a', { clusterIP: '10.96.0.1' }));
    tracker.updateEndpointSlice(makeSlice('a', [{ ip: '10.0.0.1' }]));
    assert.deepEqual([...tracker.snapshot().changedServices], []);

    tracker.updateEndpointSlice(makeSlice('b', [{ ip: '10.0.0.5' }]));
    const snapshot = tracker.snapshot();
    assert.deepEqual([...snapshot.changedServices], ['default/b']);
    assert.deepEqual(hostPorts(snapshot.desired.IPv4.servicePorts[1]!.clusterEndpoints), ['10.0.0.5:8080']);

    tracker.deleteEndpointSlice(makeSlice('b', []));
    tracker.deleteService('default', 'a');
    const afterDelete = tracker.snapshot();
    assert.deepEqual([...afterDelete.changedServices].sort(), ['default/a', 'default/b']);
    assert.deepEqual(
      afterDelete.desired.IPv4.servicePorts.map((port) => [port.name, port.hasEndpoints]),
      [['default/b:http', false]],
    );
  });

  test('adding the proxy-name label removes the Service; a new node zone marks everything changed', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(makeService('a'));
    tracker.snapshot();
    tracker.updateService(makeService('a', {}, { labels: { [LABEL_SERVICE_PROXY_NAME]: 'cilium' } }));
    const claimed = tracker.snapshot();
    assert.deepEqual([...claimed.changedServices], ['default/a']);
    assert.deepEqual(claimed.desired.IPv4.servicePorts, []);

    tracker.updateService(makeService('a'));
    tracker.snapshot();
    tracker.setNode({ ...TEST_NODE, zone: 'zone-b' });
    assert.deepEqual([...tracker.pendingChanges], ['default/a']);
  });

  test('a snapshot after a few changes lists the same ports, in the same order, as a fresh tracker fed the same objects', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    const services = new Map<string, V1Service>();
    const slices = new Map<string, V1EndpointSlice>();
    const put = (service: V1Service, slice: V1EndpointSlice | null) => {
      services.set(service.metadata!.name!, service);
      tracker.updateService(service);
      if (slice !== null) {
        slices.set(service.metadata!.name!, slice);
        tracker.updateEndpointSlice(slice);
      }
    };
    const twoPorts = [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ];
    for (let index = 0; index < 6; index++)
      put(
        makeService(`s${index}`, { clusterIP: `10.96.2.${index}` }),
        makeSlice(`s${index}`, [{ ip: `10.244.2.${index}` }]),
      );
    const steps: (() => void)[] = [
      () => put(makeService('s2', { clusterIP: '10.96.2.2' }), makeSlice('s2', [{ ip: '10.244.3.2' }])),
      () => put(makeService('s4', { clusterIP: '10.96.2.4', ports: twoPorts }), null),
      () =>
        put(
          makeService('s4', { clusterIP: '10.96.2.4', ports: twoPorts }),
          makeSlice('s4', [{ ip: '10.244.3.4' }]),
        ),
      () => {
        services.delete('s1');
        tracker.deleteService('default', 's1');
      },
      () =>
        put(
          makeService('s0', {
            clusterIP: '10.96.2.0',
            clusterIPs: ['10.96.2.0', 'fd00::20'],
            ipFamilies: ['IPv4', 'IPv6'],
          }),
          null,
        ),
      () =>
        put(
          makeService('s5', { clusterIP: '10.96.2.5' }),
          makeSlice('s5', [{ ip: '10.244.3.5' }, { ip: '10.244.4.5' }]),
        ),
    ];
    tracker.snapshot();
    for (const [index, step] of steps.entries()) {
      step();
      const fresh = new ChangeTracker({ node: TEST_NODE });
      for (const service of services.values()) fresh.updateService(service);
      for (const slice of slices.values()) fresh.updateEndpointSlice(slice);
      assert.deepEqual(tracker.snapshot().desired, fresh.snapshot().desired, `step ${index}`);
    }
  });

  test('the IPVS scheduler annotation is carried as written and a change of it marks the Service changed', () => {
    const withScheduler = (value: string | undefined) => {
      const service = makeService('a');
      if (value !== undefined)
        service.metadata!.annotations = { [ANNOTATION_IPVS_SCHEDULER]: value, unrelated: value };
      return service;
    };
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(withScheduler(undefined));
    assert.equal(tracker.snapshot().desired.IPv4.servicePorts[0]!.ipvsScheduler, '');

    tracker.updateService(withScheduler('lc'));
    const annotated = tracker.snapshot();
    assert.deepEqual([...annotated.changedServices], ['default/a']);
    assert.equal(annotated.desired.IPv4.servicePorts[0]!.ipvsScheduler, 'lc');

    // Unknown values travel unchanged: judging them is the IPVS mode's business.
    tracker.updateService(withScheduler('maglev'));
    assert.equal(tracker.snapshot().desired.IPv4.servicePorts[0]!.ipvsScheduler, 'maglev');

    const other = withScheduler('maglev');
    other.metadata!.annotations!['unrelated'] = 'changed';
    tracker.updateService(other);
    assert.deepEqual([...tracker.snapshot().changedServices], []);
  });
});
