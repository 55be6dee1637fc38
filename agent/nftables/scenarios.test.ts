/**
 * The dataplane scenarios of the iptables issue as one table, run once per mode: each row renders
 * a cluster, loads it into that mode's simulated kernel and traces packets, asserting the same
 * outcome (backends and their probabilities, DROP or REJECT, masquerade) in iptables and nftables.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { renderFull } from '../iptables/test-helpers.ts';
import {
  backendProbabilities,
  simulate,
  type TraceOutcome,
  type TracePacket,
  tracePacket,
} from '../iptables/trace.ts';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import type { IPFamily, NodeInfo } from '../state/types.ts';
import { renderNftablesFull } from './test-helpers.ts';
import { simulateNftables, traceNftablesPacket } from './trace.ts';

const NODE_IP = TEST_NODE.addresses[0]!;

interface Probe {
  readonly packet: Partial<TracePacket> & Pick<TracePacket, 'source' | 'destination' | 'port'>;
  /** backendProbabilities of the outcomes. */
  readonly expect: Record<string, number>;
  /** Where the modes differ on purpose, the nftables expectation. */
  readonly expectNftables?: Record<string, number>;
  /** true/false: every outcome is (not) masqueraded; 'hairpin': only the outcome DNATed back to the source. */
  readonly masquerade?: boolean | 'hairpin';
  /** Every outcome records the source in the affinity list of the endpoint it reached. */
  readonly recordsAffinity?: boolean;
}

interface Scenario {
  readonly name: string;
  readonly services: V1Service[];
  readonly slices: V1EndpointSlice[];
  readonly family?: IPFamily;
  readonly node?: NodeInfo;
  readonly render?: { readonly nodePortAddresses?: string[]; readonly masqueradeAll?: boolean };
  readonly probes: readonly Probe[];
}

const seedService = makeService('clusteripservice', {
  clusterIP: '10.110.244.138',
  ports: [{ port: 8080, protocol: 'TCP', targetPort: 80 }],
});
const seedSlice = makeSlice(
  'clusteripservice',
  ['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8'].map((ip) => ({ ip, node: 'node-b' })),
  { ports: [{ name: '', port: 80 }] },
);
const seedBackends = {
  '10.244.1.5:80': 0.25,
  '10.244.1.6:80': 0.25,
  '10.244.1.7:80': 0.25,
  '10.244.1.8:80': 0.25,
};
const nodePortService = makeService('np', {
  type: 'NodePort',
  externalIPs: ['198.18.5.5'],
  ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
});
const twoPods = makeSlice('np', [
  { ip: '10.244.0.5', node: 'node-a' },
  { ip: '10.244.1.5', node: 'node-b' },
]);
const lbService = (ranges: string[]) =>
  makeService(
    'lb',
    {
      type: 'LoadBalancer',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }],
      loadBalancerSourceRanges: ranges,
    },
    { loadBalancerIPs: ['198.18.100.1'] },
  );
const localService = makeService('etp', {
  type: 'NodePort',
  externalTrafficPolicy: 'Local',
  ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30082 }],
});
const itpService = makeService('itp', { internalTrafficPolicy: 'Local' });
const dualService = makeService('dual', {
  clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
  ipFamilies: ['IPv4', 'IPv6'],
});
const dualSlices = [
  makeSlice('dual', [{ ip: '10.244.1.5' }], { name: 'dual-v4' }),
  makeSlice('dual', [{ ip: 'fd00:10:244:1::5' }], { name: 'dual-v6' }),
];

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'the seed’s ClusterIP: four pods at 1/4 each; pods keep their source, off-cluster and host are masqueraded',
    services: [seedService],
    slices: [seedSlice],
    probes: [
      {
        packet: { source: '10.244.2.9', destination: '10.110.244.138', port: 8080 },
        expect: seedBackends,
        masquerade: false,
      },
      {
        packet: { source: '198.18.9.9', destination: '10.110.244.138', port: 8080 },
        expect: seedBackends,
        masquerade: true,
      },
      {
        packet: { source: NODE_IP, destination: '10.110.244.138', port: 8080, fromHost: true },
        expect: seedBackends,
        masquerade: true,
      },
    ],
  },
  {
    name: 'another port on a cluster IP: iptables lets it through untranslated, nftables rejects it (upstream’s cluster-ips-check)',
    services: [seedService],
    slices: [seedSlice],
    probes: [
      {
        packet: { source: '10.244.2.9', destination: '10.110.244.138', port: 80 },
        expect: { ACCEPT: 1 },
        expectNftables: { REJECT: 1 },
      },
    ],
  },
  {
    name: 'hairpin: a pod reaching itself through the Service is masqueraded, the others are not',
    services: [seedService],
    slices: [seedSlice],
    probes: [
      {
        packet: { source: '10.244.1.5', destination: '10.110.244.138', port: 8080 },
        expect: seedBackends,
        masquerade: 'hairpin',
      },
    ],
  },
  {
    name: 'NodePort and external IP reach every backend, masqueraded (Cluster policy)',
    services: [nodePortService],
    slices: [twoPods],
    probes: [NODE_IP, '198.18.5.5'].map((destination) => ({
      packet: { source: '198.18.9.9', destination, port: destination === NODE_IP ? 30080 : 80 },
      expect: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      masquerade: true,
    })),
  },
  {
    name: '--nodeport-addresses limits node ports to matching node addresses',
    services: [nodePortService],
    slices: [twoPods],
    node: { ...TEST_NODE, addresses: ['198.18.0.2', '198.18.50.2'] },
    render: { nodePortAddresses: ['198.18.0.0/24'] },
    probes: [
      {
        packet: {
          source: '198.18.9.9',
          destination: '198.18.0.2',
          port: 30080,
          localAddresses: ['198.18.0.2', '198.18.50.2'],
        },
        expect: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      },
      {
        packet: {
          source: '198.18.9.9',
          destination: '198.18.50.2',
          port: 30080,
          localAddresses: ['198.18.0.2', '198.18.50.2'],
        },
        expect: { ACCEPT: 1 },
      },
    ],
  },
  {
    name: 'LoadBalancer IP with source ranges: inside DNAT, outside DROP; the node port ignores ranges',
    services: [lbService(['198.18.7.0/24'])],
    slices: [makeSlice('lb', [{ ip: '10.244.1.5' }])],
    probes: [
      {
        packet: { source: '198.18.7.9', destination: '198.18.100.1', port: 80 },
        expect: { '10.244.1.5:8080': 1 },
      },
      { packet: { source: '198.18.9.9', destination: '198.18.100.1', port: 80 }, expect: { DROP: 1 } },
      {
        packet: { source: '198.18.9.9', destination: NODE_IP, port: 30081 },
        expect: { '10.244.1.5:8080': 1 },
      },
    ],
  },
  {
    name: 'a source range containing the node lets the node reach its own VIP',
    services: [lbService(['198.18.0.0/24'])],
    slices: [makeSlice('lb', [{ ip: '10.244.1.5' }])],
    probes: [
      {
        packet: { source: '198.18.100.1', destination: '198.18.100.1', port: 80 },
        expect: { '10.244.1.5:8080': 1 },
      },
    ],
  },
  {
    name: 'sessionAffinity ClientIP: a returning client goes back to its endpoint; a new one is recorded',
    services: [
      makeService('sticky', {
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      }),
    ],
    slices: [makeSlice('sticky', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }])],
    probes: [
      {
        packet: { source: '10.244.2.9', destination: '10.96.0.10', port: 80 },
        expect: { '10.244.1.5:8080': 0.5, '10.244.1.6:8080': 0.5 },
        recordsAffinity: true,
      },
    ],
  },
  {
    name: 'externalTrafficPolicy Local: outside clients reach only the local endpoint, source kept; pods reach all',
    services: [localService],
    slices: [twoPodsOf('etp')],
    probes: [
      {
        packet: { source: '198.18.9.9', destination: NODE_IP, port: 30082 },
        expect: { '10.244.0.5:8080': 1 },
        masquerade: false,
      },
      {
        packet: { source: '10.244.0.9', destination: NODE_IP, port: 30082 },
        expect: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      },
    ],
  },
  {
    name: 'externalTrafficPolicy Local without a local endpoint: outside DROP, pods still served',
    services: [localService],
    slices: [makeSlice('etp', [{ ip: '10.244.1.5', node: 'node-b' }])],
    probes: [
      { packet: { source: '198.18.9.9', destination: NODE_IP, port: 30082 }, expect: { DROP: 1 } },
      {
        packet: { source: '10.244.0.9', destination: NODE_IP, port: 30082 },
        expect: { '10.244.1.5:8080': 1 },
      },
    ],
  },
  {
    name: 'internalTrafficPolicy Local: only the local endpoint',
    services: [itpService],
    slices: [twoPodsOf('itp')],
    probes: [
      {
        packet: { source: '10.244.0.9', destination: '10.96.0.10', port: 80 },
        expect: { '10.244.0.5:8080': 1 },
      },
    ],
  },
  {
    name: 'internalTrafficPolicy Local without a local endpoint: DROP',
    services: [itpService],
    slices: [makeSlice('itp', [{ ip: '10.244.1.5', node: 'node-b' }])],
    probes: [{ packet: { source: '10.244.0.9', destination: '10.96.0.10', port: 80 }, expect: { DROP: 1 } }],
  },
  {
    name: 'no endpoints: cluster IP, external IP and node port are rejected at once',
    services: [
      makeService('empty', {
        type: 'NodePort',
        externalIPs: ['198.18.5.5'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30083 }],
      }),
    ],
    slices: [makeSlice('empty', [{ ip: '10.244.1.5', ready: false }])],
    probes: (
      [
        ['10.96.0.10', 80],
        ['198.18.5.5', 80],
        [NODE_IP, 30083],
      ] as const
    ).map(([destination, port]) => ({
      packet: { source: '10.244.0.9', destination, port },
      expect: { REJECT: 1 },
    })),
  },
  {
    name: 'dual-stack: the IPv6 ruleset serves the IPv6 cluster IP with a bracketed DNAT target',
    services: [dualService],
    slices: dualSlices,
    family: 'IPv6',
    probes: [
      {
        packet: { source: 'fd00:198:18::9', destination: 'fd00:10:96::10', port: 80 },
        expect: { '[fd00:10:244:1::5]:8080': 1 },
        masquerade: true,
      },
    ],
  },
  {
    name: 'dual-stack: the IPv4 ruleset serves the IPv4 cluster IP',
    services: [dualService],
    slices: dualSlices,
    probes: [
      {
        packet: { source: '10.244.0.9', destination: '10.96.0.10', port: 80 },
        expect: { '10.244.1.5:8080': 1 },
      },
    ],
  },
  {
    name: '--masquerade-all masquerades pod traffic to a cluster IP too',
    services: [seedService],
    slices: [seedSlice],
    render: { masqueradeAll: true },
    probes: [
      {
        packet: { source: '10.244.2.9', destination: '10.110.244.138', port: 8080 },
        expect: seedBackends,
        masquerade: true,
      },
    ],
  },
  {
    name: 'a UDP Service is served only for UDP',
    services: [makeService('dns', { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })],
    slices: [
      makeSlice('dns', [{ ip: '10.244.1.5' }], { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    ],
    probes: [
      {
        packet: { source: '10.244.0.9', destination: '10.96.0.10', port: 53, protocol: 'udp' },
        expect: { '10.244.1.5:53': 1 },
      },
      {
        packet: { source: '10.244.0.9', destination: '10.96.0.10', port: 53, protocol: 'tcp' },
        expect: { ACCEPT: 1 },
        expectNftables: { REJECT: 1 },
      },
    ],
  },
];

function twoPodsOf(service: string): V1EndpointSlice {
  return makeSlice(service, [
    { ip: '10.244.0.5', node: 'node-a' },
    { ip: '10.244.1.5', node: 'node-b' },
  ]);
}

type Tracer = (packet: TracePacket) => TraceOutcome[];

const MODES: Record<'iptables' | 'nftables', (scenario: Scenario) => Tracer> = {
  iptables: (scenario) => {
    const kernel = simulate(
      renderFull(scenario.services, scenario.slices, {
        family: scenario.family ?? 'IPv4',
        node: scenario.node ?? TEST_NODE,
        render: scenario.render ?? {},
      }),
    );
    return (packet) => tracePacket(kernel, packet);
  },
  nftables: (scenario) => {
    const kernel = simulateNftables(
      renderNftablesFull(scenario.services, scenario.slices, {
        family: scenario.family ?? 'IPv4',
        node: scenario.node ?? TEST_NODE,
        render: scenario.render ?? {},
      }).script,
    );
    return (packet) => traceNftablesPacket(kernel, packet);
  },
};

for (const [mode, load] of Object.entries(MODES)) {
  describe(`dataplane scenarios (${mode})`, () => {
    for (const scenario of SCENARIOS) {
      test(scenario.name, () => {
        const trace = load(scenario);
        for (const probe of scenario.probes) {
          const packet: TracePacket = {
            protocol: 'tcp',
            localAddresses: [...TEST_NODE.addresses],
            ...probe.packet,
          };
          const outcomes = trace(packet);
          const label = `${packet.source} → ${packet.destination}:${packet.port}`;
          const expected =
            mode === 'nftables' && probe.expectNftables !== undefined ? probe.expectNftables : probe.expect;
          assert.deepEqual(backendProbabilities(outcomes), expected, label);
          for (const outcome of outcomes) {
            if (probe.masquerade === 'hairpin')
              assert.equal(
                outcome.masquerade,
                outcome.dnat === `${packet.source}:80`,
                `${label} via ${outcome.dnat}`,
              );
            else if (probe.masquerade !== undefined)
              assert.equal(outcome.masquerade, probe.masquerade, label);
            if (probe.recordsAffinity === true) assert.equal(outcome.recentSet.length, 1, label);
          }
        }
      });
    }
  });
}
