import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ANNOTATION_IPVS_SCHEDULER } from '../state/service.ts';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import type { DesiredState, IPFamily } from '../state/types.ts';
import {
  DEFAULT_IPVS_RENDER_OPTIONS,
  desiredVirtualServers,
  type IpvsKernelView,
  type IpvsRenderOptions,
  ipvsSchedulerFor,
  type KernelVirtualServer,
  planIpvs,
  renderIpvsRules,
  virtualServerKey,
} from './render.ts';

function desiredOf(
  services: V1Service[],
  slices: V1EndpointSlice[],
  family: IPFamily = 'IPv4',
): DesiredState {
  const tracker = new ChangeTracker({ node: TEST_NODE });
  for (const service of services) tracker.updateService(service);
  for (const slice of slices) tracker.updateEndpointSlice(slice);
  return tracker.snapshot().desired[family];
}

const OPTIONS: IpvsRenderOptions = { ...DEFAULT_IPVS_RENDER_OPTIONS, clusterCIDRs: ['10.244.0.0/16'] };
const EMPTY_VIEW: IpvsKernelView = {
  current: new Map(),
  draining: new Map(),
  connections: new Map(),
  now: 0,
  drainTimeoutMs: 60_000,
};

const web = makeService(
  'web',
  {
    type: 'LoadBalancer',
    externalIPs: ['198.18.5.5'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
    loadBalancerSourceRanges: ['198.18.7.0/24'],
  },
  { loadBalancerIPs: ['198.18.100.1'] },
);
const webPods = makeSlice('web', [
  { ip: '10.244.1.6', node: 'node-b' },
  { ip: '10.244.1.5', node: 'node-b' },
]);

describe('IPVS virtual and real servers (golden)', () => {
  test('one virtual server per cluster IP, external IP, LB IP and node address:nodePort, each with every endpoint', () => {
    const plan = planIpvs(desiredVirtualServers(desiredOf([web], [webPods]), TEST_NODE, OPTIONS), EMPTY_VIEW);
    assert.deepEqual(plan.commands, [
      '-A -t 10.96.0.10:80 -s rr',
      '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1',
      '-A -t 198.18.0.2:30080 -s rr',
      '-a -t 198.18.0.2:30080 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 198.18.0.2:30080 -r 10.244.1.6:8080 -m -w 1',
      '-A -t 198.18.100.1:80 -s rr',
      '-a -t 198.18.100.1:80 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 198.18.100.1:80 -r 10.244.1.6:8080 -m -w 1',
      '-A -t 198.18.5.5:80 -s rr',
      '-a -t 198.18.5.5:80 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 198.18.5.5:80 -r 10.244.1.6:8080 -m -w 1',
    ]);
  });

  test('schedulers: the annotation wins over the default; every supported scheduler renders; a bad value gets the default and is reported', () => {
    const annotated = (name: string, value: string) => {
      const service = makeService(name, { clusterIP: `10.96.0.${name.length + 10}` });
      service.metadata!.annotations = { [ANNOTATION_IPVS_SCHEDULER]: value };
      return service;
    };
    for (const scheduler of ['rr', 'lc', 'dh', 'sh', 'sed', 'nq'] as const) {
      assert.deepEqual(ipvsSchedulerFor(scheduler, 'rr'), { scheduler, error: null });
      const servers = desiredVirtualServers(desiredOf([annotated('s', scheduler)], []), TEST_NODE, OPTIONS);
      assert.deepEqual(planIpvs(servers, EMPTY_VIEW).commands, [`-A -t 10.96.0.11:80 -s ${scheduler}`]);
    }
    const mixed = desiredOf([makeService('plain'), annotated('hashed', 'sh'), annotated('typo', 'wrr2')], []);
    const options = { ...OPTIONS, defaultScheduler: 'lc' } as const;
    assert.deepEqual(planIpvs(desiredVirtualServers(mixed, TEST_NODE, options), EMPTY_VIEW).commands, [
      '-A -t 10.96.0.10:80 -s lc',
      '-A -t 10.96.0.14:80 -s lc',
      '-A -t 10.96.0.16:80 -s sh',
    ]);
    const error =
      'metadata.annotations[portico.dev/ipvs-scheduler]: Unsupported value: "wrr2": supported values: "dh", "lc", "nq", "rr", "sed", "sh"';
    assert.deepEqual(ipvsSchedulerFor('wrr2', 'rr'), { scheduler: 'rr', error });
    assert.deepEqual(ipvsSchedulerFor('', 'nq'), { scheduler: 'nq', error: null });
    assert.deepEqual(
      [...renderIpvsRules(mixed, TEST_NODE, options).schedulerErrors],
      [['default/typo', error]],
    );
  });

  test('sessionAffinity ClientIP is IPVS persistence with the affinity timeout; UDP uses -u; IPv6 is bracketed', () => {
    const sticky = makeService('sticky', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    });
    const servers = desiredVirtualServers(desiredOf([sticky], []), TEST_NODE, OPTIONS);
    assert.deepEqual(planIpvs(servers, EMPTY_VIEW).commands, ['-A -u 10.96.0.10:53 -s rr -p 600']);
    const dual = makeService('dual', {
      clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
      ipFamilies: ['IPv4', 'IPv6'],
    });
    const v6 = desiredVirtualServers(
      desiredOf([dual], [makeSlice('dual', [{ ip: 'fd00:10:244::5' }])], 'IPv6'),
      TEST_NODE,
      OPTIONS,
    );
    assert.deepEqual(planIpvs(v6, EMPTY_VIEW).commands, [
      '-A -t [fd00:10:96::10]:80 -s rr',
      '-a -t [fd00:10:96::10]:80 -r [fd00:10:244::5]:8080 -m -w 1',
    ]);
  });

  test('traffic policies: Local external policy gives external servers only local endpoints', () => {
    const local = makeService('etp', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30082 }],
    });
    const pods = makeSlice('etp', [
      { ip: '10.244.0.5', node: 'node-a' },
      { ip: '10.244.1.5', node: 'node-b' },
    ]);
    const servers = desiredVirtualServers(desiredOf([local], [pods]), TEST_NODE, OPTIONS);
    assert.deepEqual(
      servers.map((server) => [virtualServerKey(server), server.realServers]),
      [
        ['tcp:10.96.0.10:80', ['10.244.0.5:8080', '10.244.1.5:8080']],
        ['tcp:198.18.0.2:30082', ['10.244.0.5:8080']],
      ],
    );
  });

  test('a changed scheduler or timeout edits the virtual server; a removed Service deletes it', () => {
    const current = new Map<string, KernelVirtualServer>([
      [
        'tcp:10.96.0.10:80',
        {
          protocol: 'TCP',
          address: '10.96.0.10',
          port: 80,
          scheduler: 'rr',
          persistenceSeconds: null,
          realServers: new Map(),
        },
      ],
      [
        'tcp:10.96.0.99:80',
        {
          protocol: 'TCP',
          address: '10.96.0.99',
          port: 80,
          scheduler: 'rr',
          persistenceSeconds: null,
          realServers: new Map([['10.244.9.9:80', 1]]),
        },
      ],
    ]);
    const servers = desiredVirtualServers(desiredOf([makeService('s')], []), TEST_NODE, {
      ...OPTIONS,
      defaultScheduler: 'sh',
    });
    assert.deepEqual(planIpvs(servers, { ...EMPTY_VIEW, current }).commands, [
      '-E -t 10.96.0.10:80 -s sh',
      '-D -t 10.96.0.99:80',
    ]);
  });

  test('graceful termination through sync after sync: weight 0, kept while busy, deleted when drained', () => {
    const one = desiredVirtualServers(
      desiredOf([makeService('s')], [makeSlice('s', [{ ip: '10.244.1.5' }])]),
      TEST_NODE,
      OPTIONS,
    );
    const realServers = new Map([
      ['10.244.1.5:8080', 1],
      ['10.244.1.6:8080', 1],
    ]);
    const current = new Map<string, KernelVirtualServer>([
      [
        'tcp:10.96.0.10:80',
        {
          protocol: 'TCP',
          address: '10.96.0.10',
          port: 80,
          scheduler: 'rr',
          persistenceSeconds: null,
          realServers,
        },
      ],
    ]);
    const first = planIpvs(one, { ...EMPTY_VIEW, current, now: 1000 });
    assert.deepEqual(first.commands, ['-e -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 0']);
    const drainingServers = new Map([...realServers, ['10.244.1.6:8080', 0]]);
    const drainingView = {
      ...EMPTY_VIEW,
      current: new Map([
        ['tcp:10.96.0.10:80', { ...current.get('tcp:10.96.0.10:80')!, realServers: drainingServers }],
      ]),
      draining: first.draining,
    };
    const busy = new Map([['tcp:10.96.0.10:80', new Map([['10.244.1.6:8080', { active: 1, inactive: 0 }]])]]);
    assert.deepEqual(planIpvs(one, { ...drainingView, now: 2000, connections: busy }).commands, []);
    const idle = new Map([['tcp:10.96.0.10:80', new Map([['10.244.1.6:8080', { active: 0, inactive: 0 }]])]]);
    assert.deepEqual(planIpvs(one, { ...drainingView, now: 3000, connections: idle }).commands, [
      '-d -t 10.96.0.10:80 -r 10.244.1.6:8080',
    ]);
  });
});

describe('IPVS ipsets, dummy addresses and iptables rules (golden)', () => {
  test('every service address goes on the dummy interface and into the matching sets', () => {
    const ruleset = renderIpvsRules(desiredOf([web], [webPods]), TEST_NODE, OPTIONS);
    assert.deepEqual(ruleset.dummyAddresses, ['10.96.0.10/32', '198.18.100.1/32', '198.18.5.5/32']);
    const adds = ruleset.ipsetRestore.split('\n').filter((line) => line.startsWith('add '));
    const entries = adds.map((line) => line.replace(/ comment ".*"$/, ''));
    assert.deepEqual(entries, [
      'add PORTICO-LOOP-BACK-T 10.244.1.5,tcp:8080,10.244.1.5',
      'add PORTICO-LOOP-BACK-T 10.244.1.6,tcp:8080,10.244.1.6',
      'add PORTICO-CLUSTER-IP-T 10.96.0.10,tcp:80',
      'add PORTICO-EXTERNAL-IP-T 198.18.5.5,tcp:80',
      'add PORTICO-LB-T 198.18.100.1,tcp:80',
      'add PORTICO-LB-FW-T 198.18.100.1,tcp:80',
      'add PORTICO-LB-SOURCE-CIDR-T 198.18.100.1,tcp:80,198.18.7.0/24',
      'add PORTICO-NODE-PORT-TCP-T 30080',
      'add PORTICO-IPVS-IPS-T 10.96.0.10',
      'add PORTICO-IPVS-IPS-T 198.18.100.1',
      'add PORTICO-IPVS-IPS-T 198.18.5.5',
    ]);
    assert.match(
      ruleset.ipsetRestore,
      /^create PORTICO-CLUSTER-IP hash:ip,port family inet comment -exist$/m,
    );
    assert.match(
      ruleset.ipsetRestore,
      /^swap PORTICO-CLUSTER-IP-T PORTICO-CLUSTER-IP\ndestroy PORTICO-CLUSTER-IP-T$/m,
    );
    assert.match(
      ruleset.iptablesRestore,
      /-A PORTICO-SERVICES ! -s 10\.244\.0\.0\/16 -m set --match-set PORTICO-CLUSTER-IP dst,dst -j PORTICO-MARK-MASQ/,
    );
    assert.match(
      ruleset.iptablesRestore,
      /-A PORTICO-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set PORTICO-IPVS-IPS dst -j REJECT/,
    );
  });

  test('the iptables rules do not grow with the number of Services', () => {
    const few = renderIpvsRules(desiredOf([web], [webPods]), TEST_NODE, OPTIONS);
    const many = renderIpvsRules(
      desiredOf(
        Array.from({ length: 50 }, (_, i) => makeService(`s${i}`, { clusterIP: `10.96.1.${i}` })),
        [],
      ),
      TEST_NODE,
      OPTIONS,
    );
    assert.equal(many.iptablesRestore, few.iptablesRestore);
  });

  test('IPv6 sets have their own names and family', () => {
    const dual = makeService('dual', {
      clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
      ipFamilies: ['IPv4', 'IPv6'],
    });
    const ruleset = renderIpvsRules(desiredOf([dual], [], 'IPv6'), TEST_NODE, OPTIONS);
    assert.deepEqual(ruleset.dummyAddresses, ['fd00:10:96::10/128']);
    assert.match(
      ruleset.ipsetRestore,
      /^create PORTICO-6-CLUSTER-IP hash:ip,port family inet6 comment -exist$/m,
    );
    assert.ok(ruleset.ipsets.every((set) => set.name.length <= 31 && set.name.startsWith('PORTICO-6-')));
  });
});
