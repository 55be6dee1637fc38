import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import { endpointChainName, MAX_CHAIN_NAME_LENGTH, serviceChainNames, servicePortHash } from './names.ts';
import { probability, renderIptablesRules } from './render.ts';
import { renderFull, TEST_RENDER_OPTIONS } from './test-helpers.ts';
import { backendProbabilities, simulate, type TracePacket, tracePacket } from './trace.ts';

const NODE_IP = TEST_NODE.addresses[0]!;
const LOCAL = [...TEST_NODE.addresses];

function packet(
  input: Partial<TracePacket> & Pick<TracePacket, 'source' | 'destination' | 'port'>,
): TracePacket {
  return { protocol: 'tcp', localAddresses: LOCAL, ...input };
}

/** The seed's clusteripservice: four pods behind 10.110.244.138:8080, on another node. */
const seedService = makeService('clusteripservice', {
  clusterIP: '10.110.244.138',
  ports: [{ port: 8080, protocol: 'TCP', targetPort: 80 }],
});
const seedPods = ['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8'];
const seedSlice = makeSlice(
  'clusteripservice',
  seedPods.map((ip) => ({ ip, node: 'node-b' })),
  { ports: [{ name: '', port: 80 }] },
);

describe('chain names', () => {
  test('hashes match upstream’s portProtoHash vectors and the seed dump', () => {
    assert.equal(servicePortHash('default/kubernetes:https', 'TCP'), 'NPX46M4PTMTKRN6Y');
    assert.equal(servicePortHash('kube-system/kube-dns:dns', 'UDP'), 'TCOU7JCQXEZGVUNU');
    assert.equal(
      serviceChainNames('kube-system/kube-dns:metrics', 'TCP').cluster,
      'PORTICO-SVC-JD5MR3NA4I4DYORP',
    );
    assert.equal(
      endpointChainName('default/kubernetes:https', 'TCP', '192.168.1.13:6443'),
      'PORTICO-SEP-XWFENG4R272LDJ7S',
    );
  });

  test('every chain fits the 28-character limit', () => {
    const names = serviceChainNames(
      'a-very-long-namespace-name/a-very-long-service-name:a-long-port',
      'SCTP',
    );
    for (const name of [...Object.values(names), endpointChainName('x/y', 'TCP', '[fd00::1]:80')])
      assert.ok(name.length <= MAX_CHAIN_NAME_LENGTH, name);
  });

  test('statistic probabilities are 1/(n-i) with ten decimals', () => {
    assert.deepEqual([4, 3, 2].map(probability), ['0.2500000000', '0.3333333333', '0.5000000000']);
  });
});

describe('golden text', () => {
  test('the seed’s ClusterIP Service renders the seed’s chains, hashes and probabilities', () => {
    const ruleset = renderFull([seedService], [seedSlice]);
    assert.equal(
      ruleset.nat,
      `*nat
:PORTICO-SERVICES - [0:0]
:PORTICO-NODEPORTS - [0:0]
:PORTICO-POSTROUTING - [0:0]
:PORTICO-PROXY-CANARY - [0:0]
:PORTICO-SVC-IAEKQ2XJ6CG3CMAV - [0:0]
:PORTICO-SEP-XQLVMUS2B5RDCPB3 - [0:0]
:PORTICO-SEP-V3FKGIPPTFTFWTFR - [0:0]
:PORTICO-SEP-TME5DB4L4HUUFKUT - [0:0]
:PORTICO-SEP-IWJCVIOI5A2IP7ND - [0:0]
:PORTICO-MARK-MASQ - [0:0]
-A PORTICO-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A PORTICO-POSTROUTING -j MARK --xor-mark 0x00004000
-A PORTICO-POSTROUTING -m comment --comment "portico service traffic requiring SNAT" -j MASQUERADE --random-fully
-A PORTICO-MARK-MASQ -j MARK --or-mark 0x00004000
-A PORTICO-SERVICES -m comment --comment "default/clusteripservice cluster IP" -m tcp -p tcp -d 10.110.244.138 --dport 8080 -j PORTICO-SVC-IAEKQ2XJ6CG3CMAV
-A PORTICO-SERVICES -m comment --comment "portico service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j PORTICO-NODEPORTS
-A PORTICO-SVC-IAEKQ2XJ6CG3CMAV -m comment --comment "default/clusteripservice cluster IP" -m tcp -p tcp -d 10.110.244.138 --dport 8080 ! -s 10.244.0.0/16 -j PORTICO-MARK-MASQ
-A PORTICO-SVC-IAEKQ2XJ6CG3CMAV -m comment --comment "default/clusteripservice -> 10.244.1.5:80" -m statistic --mode random --probability 0.2500000000 -j PORTICO-SEP-XQLVMUS2B5RDCPB3
-A PORTICO-SVC-IAEKQ2XJ6CG3CMAV -m comment --comment "default/clusteripservice -> 10.244.1.6:80" -m statistic --mode random --probability 0.3333333333 -j PORTICO-SEP-V3FKGIPPTFTFWTFR
-A PORTICO-SVC-IAEKQ2XJ6CG3CMAV -m comment --comment "default/clusteripservice -> 10.244.1.7:80" -m statistic --mode random --probability 0.5000000000 -j PORTICO-SEP-IWJCVIOI5A2IP7ND
-A PORTICO-SVC-IAEKQ2XJ6CG3CMAV -m comment --comment "default/clusteripservice -> 10.244.1.8:80" -j PORTICO-SEP-TME5DB4L4HUUFKUT
-A PORTICO-SEP-IWJCVIOI5A2IP7ND -m comment --comment "default/clusteripservice" -s 10.244.1.7 -j PORTICO-MARK-MASQ
-A PORTICO-SEP-IWJCVIOI5A2IP7ND -m comment --comment "default/clusteripservice" -m tcp -p tcp -j DNAT --to-destination 10.244.1.7:80
-A PORTICO-SEP-TME5DB4L4HUUFKUT -m comment --comment "default/clusteripservice" -s 10.244.1.8 -j PORTICO-MARK-MASQ
-A PORTICO-SEP-TME5DB4L4HUUFKUT -m comment --comment "default/clusteripservice" -m tcp -p tcp -j DNAT --to-destination 10.244.1.8:80
-A PORTICO-SEP-V3FKGIPPTFTFWTFR -m comment --comment "default/clusteripservice" -s 10.244.1.6 -j PORTICO-MARK-MASQ
-A PORTICO-SEP-V3FKGIPPTFTFWTFR -m comment --comment "default/clusteripservice" -m tcp -p tcp -j DNAT --to-destination 10.244.1.6:80
-A PORTICO-SEP-XQLVMUS2B5RDCPB3 -m comment --comment "default/clusteripservice" -s 10.244.1.5 -j PORTICO-MARK-MASQ
-A PORTICO-SEP-XQLVMUS2B5RDCPB3 -m comment --comment "default/clusteripservice" -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:80
COMMIT
`,
    );
  });

  test('a Service without endpoints is rejected in filter and gets no nat rules', () => {
    const service = makeService('empty', {
      type: 'NodePort',
      externalIPs: ['198.18.5.5'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
    });
    const ruleset = renderFull([service], []);
    assert.equal(
      ruleset.filter,
      `*filter
:PORTICO-SERVICES - [0:0]
:PORTICO-EXTERNAL-SERVICES - [0:0]
:PORTICO-FORWARD - [0:0]
:PORTICO-NODEPORTS - [0:0]
:PORTICO-PROXY-FIREWALL - [0:0]
:PORTICO-PROXY-CANARY - [0:0]
-A PORTICO-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j REJECT
-A PORTICO-EXTERNAL-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d 198.18.5.5 --dport 80 -j REJECT
-A PORTICO-EXTERNAL-SERVICES -m comment --comment "default/empty:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT
-A PORTICO-FORWARD -m conntrack --ctstate INVALID -j DROP
-A PORTICO-FORWARD -m comment --comment "portico forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A PORTICO-FORWARD -m comment --comment "portico forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`,
    );
    assert.doesNotMatch(ruleset.nat, /PORTICO-(SVC|EXT|SEP)-/);
  });

  test('rendering is deterministic whatever order objects arrive in', () => {
    const a = makeService('a', { clusterIP: '10.96.0.1' });
    const b = makeService('b', { clusterIP: '10.96.0.2' });
    const sliceA = makeSlice('a', [{ ip: '10.244.0.2' }, { ip: '10.244.0.1' }]);
    const sliceB = makeSlice('b', [{ ip: '10.244.0.3' }]);
    const first = renderFull([a, b], [sliceA, sliceB]);
    const second = renderFull([b, a], [sliceB, sliceA]);
    assert.equal(first.filter + first.nat, second.filter + second.nat);
  });
});

describe('packet tracing per feature', () => {
  const seed = simulate(renderFull([seedService], [seedSlice]));

  test('ClusterIP from a pod: each of the four pods with probability 1/4, source kept', () => {
    const outcomes = tracePacket(
      seed,
      packet({ source: '10.244.2.9', destination: '10.110.244.138', port: 8080 }),
    );
    assert.deepEqual(backendProbabilities(outcomes), {
      '10.244.1.5:80': 0.25,
      '10.244.1.6:80': 0.25,
      '10.244.1.7:80': 0.25,
      '10.244.1.8:80': 0.25,
    });
    assert.ok(outcomes.every((outcome) => !outcome.masquerade));
  });

  test('ClusterIP from off-cluster or from the host itself is masqueraded', () => {
    for (const input of [{ source: '198.18.9.9' }, { source: NODE_IP, fromHost: true }]) {
      const outcomes = tracePacket(seed, packet({ ...input, destination: '10.110.244.138', port: 8080 }));
      assert.equal(outcomes.length, 4);
      assert.ok(outcomes.every((outcome) => outcome.masquerade && outcome.verdict === 'ACCEPT'));
    }
  });

  test('another port on the cluster IP is not translated', () => {
    const outcomes = tracePacket(
      seed,
      packet({ source: '10.244.2.9', destination: '10.110.244.138', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(outcomes), { ACCEPT: 1 });
  });

  test('hairpin: a pod reaching itself through the Service is masqueraded, other pods are not', () => {
    const outcomes = tracePacket(
      seed,
      packet({ source: '10.244.1.5', destination: '10.110.244.138', port: 8080 }),
    );
    for (const outcome of outcomes)
      assert.equal(outcome.masquerade, outcome.dnat === '10.244.1.5:80', outcome.dnat!);
  });

  const nodePortService = makeService('np', {
    type: 'NodePort',
    externalIPs: ['198.18.5.5'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
  });
  const twoPods = makeSlice('np', [
    { ip: '10.244.0.5', node: 'node-a' },
    { ip: '10.244.1.5', node: 'node-b' },
  ]);

  test('NodePort and external IP reach every backend, masqueraded (Cluster policy)', () => {
    const iptables = simulate(renderFull([nodePortService], [twoPods]));
    for (const destination of [NODE_IP, '198.18.5.5']) {
      const port = destination === NODE_IP ? 30080 : 80;
      const outcomes = tracePacket(iptables, packet({ source: '198.18.9.9', destination, port }));
      assert.deepEqual(backendProbabilities(outcomes), { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 });
      assert.ok(outcomes.every((outcome) => outcome.masquerade));
    }
  });

  test('--nodeport-addresses limits node ports to matching node addresses', () => {
    const node = { ...TEST_NODE, addresses: ['198.18.0.2', '198.18.50.2'] };
    const iptables = simulate(
      renderFull([nodePortService], [twoPods], { node, render: { nodePortAddresses: ['198.18.0.0/24'] } }),
    );
    const local = { localAddresses: node.addresses };
    const selected = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: '198.18.0.2', port: 30080, ...local }),
    );
    assert.equal(selected.length, 2);
    const other = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: '198.18.50.2', port: 30080, ...local }),
    );
    assert.deepEqual(backendProbabilities(other), { ACCEPT: 1 });
  });

  test('LoadBalancer IP with source ranges: inside the range DNAT, outside DROP; the node port ignores ranges', () => {
    const service = makeService(
      'lb',
      {
        type: 'LoadBalancer',
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }],
        loadBalancerSourceRanges: ['198.18.7.0/24'],
      },
      { loadBalancerIPs: ['198.18.100.1'] },
    );
    const iptables = simulate(renderFull([service], [makeSlice('lb', [{ ip: '10.244.1.5' }])]));
    const allowed = tracePacket(
      iptables,
      packet({ source: '198.18.7.9', destination: '198.18.100.1', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(allowed), { '10.244.1.5:8080': 1 });
    const refused = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: '198.18.100.1', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(refused), { DROP: 1 });
    const viaNodePort = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: NODE_IP, port: 30081 }),
    );
    assert.deepEqual(backendProbabilities(viaNodePort), { '10.244.1.5:8080': 1 });
  });

  test('the health check node port of a Local LoadBalancer is accepted in filter, with or without local endpoints', () => {
    const service = makeService(
      'hc',
      {
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30084 }],
      },
      { loadBalancerIPs: ['198.18.100.4'] },
    );
    for (const node of ['node-a', 'node-b']) {
      const ruleset = renderFull([service], [makeSlice('hc', [{ ip: '10.244.1.5', node }])]);
      assert.match(
        ruleset.filter,
        /-A PORTICO-NODEPORTS -m comment --comment "default\/hc:http health check node port" -m tcp -p tcp --dport 32000 -j ACCEPT/,
      );
    }
  });

  test('a source range containing the node lets the node reach its own VIP', () => {
    const service = makeService(
      'lb',
      {
        type: 'LoadBalancer',
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }],
        loadBalancerSourceRanges: ['198.18.0.0/24'],
      },
      { loadBalancerIPs: ['198.18.100.1'] },
    );
    const iptables = simulate(renderFull([service], [makeSlice('lb', [{ ip: '10.244.1.5' }])]));
    const looped = tracePacket(
      iptables,
      packet({ source: '198.18.100.1', destination: '198.18.100.1', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(looped), { '10.244.1.5:8080': 1 });
  });

  test('sessionAffinity ClientIP: a known client returns to its endpoint; a new one is recorded', () => {
    const service = makeService('sticky', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    });
    const slice = makeSlice('sticky', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }]);
    const ruleset = renderFull([service], [slice]);
    assert.match(ruleset.nat, /--rcheck --seconds 600 --reap/);
    const iptables = simulate(ruleset);
    const second = endpointChainName('default/sticky:http', 'TCP', '10.244.1.6:8080');
    const returning = tracePacket(
      iptables,
      packet({ source: '10.244.2.9', destination: '10.96.0.10', port: 80, recentLists: [second] }),
    );
    assert.deepEqual(backendProbabilities(returning), { '10.244.1.6:8080': 1 });
    const fresh = tracePacket(
      iptables,
      packet({ source: '10.244.2.9', destination: '10.96.0.10', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(fresh), { '10.244.1.5:8080': 0.5, '10.244.1.6:8080': 0.5 });
    for (const outcome of fresh)
      assert.deepEqual(outcome.recentSet, [endpointChainName('default/sticky:http', 'TCP', outcome.dnat!)]);
  });

  const localService = makeService('etp', {
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30082 }],
  });

  test('externalTrafficPolicy Local: outside clients reach only the local endpoint with their source kept', () => {
    const iptables = simulate(
      renderFull(
        [localService],
        [
          makeSlice('etp', [
            { ip: '10.244.0.5', node: 'node-a' },
            { ip: '10.244.1.5', node: 'node-b' },
          ]),
        ],
      ),
    );
    const outside = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: NODE_IP, port: 30082 }),
    );
    assert.deepEqual(backendProbabilities(outside), { '10.244.0.5:8080': 1 });
    assert.ok(outside.every((outcome) => !outcome.masquerade));
    const fromPod = tracePacket(
      iptables,
      packet({ source: '10.244.0.9', destination: NODE_IP, port: 30082 }),
    );
    assert.deepEqual(backendProbabilities(fromPod), { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 });
  });

  test('externalTrafficPolicy Local without a local endpoint: outside DROP, pods still served', () => {
    const ruleset = renderFull([localService], [makeSlice('etp', [{ ip: '10.244.1.5', node: 'node-b' }])]);
    assert.match(
      ruleset.filter,
      /"default\/etp:http has no local endpoints" -m addrtype --dst-type LOCAL .* -j DROP/,
    );
    const iptables = simulate(ruleset);
    const outside = tracePacket(
      iptables,
      packet({ source: '198.18.9.9', destination: NODE_IP, port: 30082 }),
    );
    assert.deepEqual(backendProbabilities(outside), { DROP: 1 });
    const fromPod = tracePacket(
      iptables,
      packet({ source: '10.244.0.9', destination: NODE_IP, port: 30082 }),
    );
    assert.deepEqual(backendProbabilities(fromPod), { '10.244.1.5:8080': 1 });
  });

  test('internalTrafficPolicy Local: only local endpoints, DROP when there are none', () => {
    const service = makeService('itp', { internalTrafficPolicy: 'Local' });
    const both = simulate(
      renderFull(
        [service],
        [
          makeSlice('itp', [
            { ip: '10.244.0.5', node: 'node-a' },
            { ip: '10.244.1.5', node: 'node-b' },
          ]),
        ],
      ),
    );
    const outcomes = tracePacket(both, packet({ source: '10.244.0.9', destination: '10.96.0.10', port: 80 }));
    assert.deepEqual(backendProbabilities(outcomes), { '10.244.0.5:8080': 1 });
    const remoteOnly = simulate(
      renderFull([service], [makeSlice('itp', [{ ip: '10.244.1.5', node: 'node-b' }])]),
    );
    const dropped = tracePacket(
      remoteOnly,
      packet({ source: '10.244.0.9', destination: '10.96.0.10', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(dropped), { DROP: 1 });
  });

  test('no endpoints: cluster IP, external IP and node port are rejected at once', () => {
    const service = makeService('empty', {
      type: 'NodePort',
      externalIPs: ['198.18.5.5'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30083 }],
    });
    const iptables = simulate(
      renderFull([service], [makeSlice('empty', [{ ip: '10.244.1.5', ready: false }])]),
    );
    for (const [destination, port] of [
      ['10.96.0.10', 80],
      ['198.18.5.5', 80],
      [NODE_IP, 30083],
    ] as const) {
      const outcomes = tracePacket(iptables, packet({ source: '10.244.0.9', destination, port }));
      assert.deepEqual(backendProbabilities(outcomes), { REJECT: 1 }, `${destination}:${port}`);
    }
  });

  test('dual-stack: the IPv6 ruleset serves the IPv6 cluster IP with bracketed DNAT targets', () => {
    const service = makeService('dual', {
      clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
      ipFamilies: ['IPv4', 'IPv6'],
    });
    const slices = [
      makeSlice('dual', [{ ip: '10.244.1.5' }], { name: 'dual-v4' }),
      makeSlice('dual', [{ ip: 'fd00:10:244:1::5' }], { name: 'dual-v6' }),
    ];
    const v6 = renderFull([service], slices, { family: 'IPv6' });
    assert.equal(v6.family, 'IPv6');
    assert.match(v6.nat, /! -d ::1\/128 -j PORTICO-NODEPORTS/);
    assert.match(v6.nat, /! -s fd00:10:244::\/48 -j PORTICO-MARK-MASQ/);
    assert.doesNotMatch(v6.nat, /10\.96\.0\.10/);
    const outcomes = tracePacket(
      simulate(v6),
      packet({ source: 'fd00:198:18::9', destination: 'fd00:10:96::10', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(outcomes), { '[fd00:10:244:1::5]:8080': 1 });
    const v4 = tracePacket(
      simulate(renderFull([service], slices)),
      packet({ source: '10.244.0.9', destination: '10.96.0.10', port: 80 }),
    );
    assert.deepEqual(backendProbabilities(v4), { '10.244.1.5:8080': 1 });
  });

  test('--masquerade-all masquerades pod traffic to a cluster IP too', () => {
    const iptables = simulate(renderFull([seedService], [seedSlice], { render: { masqueradeAll: true } }));
    const outcomes = tracePacket(
      iptables,
      packet({ source: '10.244.2.9', destination: '10.110.244.138', port: 8080 }),
    );
    assert.ok(outcomes.every((outcome) => outcome.masquerade));
  });

  test('above the large-cluster threshold, per-endpoint comments are left out', () => {
    const ruleset = renderFull([seedService], [seedSlice], { render: { largeClusterEndpointsThreshold: 3 } });
    assert.doesNotMatch(ruleset.nat, /-> 10\.244/);
    assert.match(ruleset.nat, /"default\/clusteripservice cluster IP"/);
  });
});

describe('partial sync', () => {
  const services = [
    makeService('a', { clusterIP: '10.96.0.1' }),
    makeService('b', { clusterIP: '10.96.0.2' }),
    makeService('c', { clusterIP: '10.96.0.3' }),
  ];

  test('rewrites only changed Services, deletes stale chains, and ends where a full sync would', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    for (const service of services) tracker.updateService(service);
    tracker.updateEndpointSlice(makeSlice('a', [{ ip: '10.244.0.1' }, { ip: '10.244.0.2' }]));
    tracker.updateEndpointSlice(makeSlice('b', [{ ip: '10.244.0.3' }]));
    tracker.updateEndpointSlice(makeSlice('c', [{ ip: '10.244.0.4' }]));
    const full = renderIptablesRules(
      tracker.snapshot().desired.IPv4,
      TEST_NODE,
      { changedServices: 'all', existingObjects: new Set() },
      TEST_RENDER_OPTIONS,
    );
    const kernel = simulate(full);

    tracker.updateEndpointSlice(makeSlice('a', [{ ip: '10.244.0.1' }]));
    tracker.deleteService('default', 'c');
    const next = tracker.snapshot();
    assert.deepEqual([...next.changedServices].sort(), ['default/a', 'default/c']);
    const partial = renderIptablesRules(
      next.desired.IPv4,
      TEST_NODE,
      { changedServices: next.changedServices, existingObjects: full.ownedObjects },
      TEST_RENDER_OPTIONS,
    );
    assert.equal(partial.full, false);
    const bChain = serviceChainNames('default/b:http', 'TCP').cluster;
    assert.doesNotMatch(partial.nat, new RegExp(`:${bChain}|-A ${bChain}`));
    const removed = endpointChainName('default/a:http', 'TCP', '10.244.0.2:8080');
    assert.match(partial.nat, new RegExp(`-X ${removed}`));
    assert.match(partial.nat, new RegExp(`-X ${serviceChainNames('default/c:http', 'TCP').cluster}`));
    assert.ok(partial.lineCount < full.lineCount);

    kernel.restore(partial.filter + partial.nat);
    const expected = simulate(
      renderIptablesRules(
        next.desired.IPv4,
        TEST_NODE,
        { changedServices: 'all', existingObjects: new Set() },
        TEST_RENDER_OPTIONS,
      ),
    );
    for (const table of ['filter', 'nat'] as const) {
      assert.deepEqual(kernel.chains(table), expected.chains(table));
      for (const chain of expected.chains(table))
        assert.deepEqual(kernel.rules(table, chain), expected.rules(table, chain), `${table} ${chain}`);
    }
    assert.deepEqual(
      partial.ownedObjects,
      new Set(expected.chains('nat').filter((chain) => /-(SVC|SEP)-/.test(chain))),
    );
  });

  test('a full sync deletes chains left over from an earlier run', () => {
    const leftover = new Set(['PORTICO-SVC-AAAAAAAAAAAAAAAA', 'PORTICO-SEP-BBBBBBBBBBBBBBBB']);
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(services[0]!);
    const ruleset = renderIptablesRules(
      tracker.snapshot().desired.IPv4,
      TEST_NODE,
      { changedServices: 'all', existingObjects: leftover },
      TEST_RENDER_OPTIONS,
    );
    for (const chain of leftover)
      assert.match(ruleset.nat, new RegExp(`:${chain} - \\[0:0\\][\\s\\S]*-X ${chain}\\n`));
  });
});
