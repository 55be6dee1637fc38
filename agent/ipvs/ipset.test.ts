/**
 * Kernel check of the parts of IPVS mode that need no IPVS module (needs root): the rendered
 * `ipset restore` input, then the iptables rules that reference those sets, inside a network
 * namespace created for the test and deleted afterwards (ipsets are per namespace), also when the
 * test fails. The dummy interface is not created here: these kernels lack the dummy driver too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import { useTestNetworkNamespace } from '../testing/netns.ts';
import { DEFAULT_IPVS_RENDER_OPTIONS, ipsetCleanup, renderIpvsRules } from './render.ts';

describe('IPVS mode ipsets and iptables rules in a fresh network namespace', () => {
  const { run, check } = useTestNetworkNamespace();

  test('ipset restore, set membership, an update by swap, iptables rules over the sets and cleanup', async () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(
      makeService(
        'web',
        {
          type: 'LoadBalancer',
          externalIPs: ['198.18.5.5'],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
          loadBalancerSourceRanges: ['198.18.0.0/24'],
          externalTrafficPolicy: 'Local',
          healthCheckNodePort: 32000,
        },
        { loadBalancerIPs: ['198.18.100.1'] },
      ),
    );
    tracker.updateEndpointSlice(makeSlice('web', [{ ip: '10.244.0.5', node: 'node-a' }]));
    tracker.updateService(
      makeService('dns', {
        clusterIP: '10.96.0.53',
        ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }],
        type: 'NodePort',
      }),
    );
    tracker.updateService(
      makeService('sctp', {
        clusterIP: '10.96.0.54',
        ports: [{ name: 'x', port: 9, protocol: 'SCTP', nodePort: 30054 }],
        type: 'NodePort',
      }),
    );
    const options = { ...DEFAULT_IPVS_RENDER_OPTIONS, clusterCIDRs: ['10.244.0.0/16'] };
    const ruleset = renderIpvsRules(tracker.snapshot().desired.IPv4, TEST_NODE, options);

    await check('ipset', ['restore'], ruleset.ipsetRestore);
    const test = async (set: string, entry: string) => (await run('ipset', ['test', set, entry])).code === 0;
    assert.ok(await test('PORTICO-CLUSTER-IP', '10.96.0.10,tcp:80'));
    assert.ok(await test('PORTICO-LB-LOCAL', '198.18.100.1,tcp:80'));
    assert.ok(await test('PORTICO-LB-SOURCE-CIDR', '198.18.100.1,tcp:80,198.18.0.77'));
    assert.ok(
      await test('PORTICO-LB-SOURCE-IP', '198.18.100.1,tcp:80,198.18.100.1'),
      'node in range: VIP as source allowed',
    );
    assert.ok(await test('PORTICO-NODE-PORT-LOCAL-TCP', '30080'));
    assert.ok(await test('PORTICO-NODE-PORT-UDP', '30053'));
    assert.ok(await test('PORTICO-NODE-PORT-SCTP', '198.18.0.2,sctp:30054'));
    assert.ok(await test('PORTICO-HEALTH-CHECK-NP', '32000'));
    assert.ok(!(await test('PORTICO-CLUSTER-IP', '10.96.0.10,tcp:81')));

    // The Service leaves: the next restore swaps in sets without it, and leaves no temporary sets.
    tracker.deleteService('default', 'dns');
    await check(
      'ipset',
      ['restore'],
      renderIpvsRules(tracker.snapshot().desired.IPv4, TEST_NODE, options).ipsetRestore,
    );
    assert.ok(!(await test('PORTICO-CLUSTER-IP', '10.96.0.53,udp:53')));
    assert.ok(await test('PORTICO-CLUSTER-IP', '10.96.0.10,tcp:80'));
    const names = (await check('ipset', ['list', '-n'])).trim().split('\n').sort();
    assert.deepEqual(names, ruleset.ipsets.map((set) => set.name).sort());

    // The kernel accepts the iptables rules that match on these sets.
    await check('iptables-restore', ['--noflush', '-w', '5'], ruleset.iptablesRestore);
    assert.match(
      await check('iptables', ['-t', 'filter', '-S', 'PORTICO-IPVS-FILTER']),
      /--match-set PORTICO-IPVS-IPS dst -j REJECT/,
    );

    // Cleanup: rules first (a set in use cannot be destroyed), then the sets.
    const chains = (table: 'filter' | 'nat', list: readonly string[]) =>
      `*${table}\n${list.map((chain) => `:${chain} - [0:0]`).join('\n')}\n${list.map((chain) => `-X ${chain}`).join('\n')}\nCOMMIT\n`;
    await check(
      'iptables-restore',
      ['--noflush', '-w', '5'],
      chains('filter', [
        'PORTICO-FORWARD',
        'PORTICO-NODE-PORT',
        'PORTICO-PROXY-FIREWALL',
        'PORTICO-SOURCE-RANGES-FW',
        'PORTICO-IPVS-FILTER',
      ]) +
        chains('nat', [
          'PORTICO-SERVICES',
          'PORTICO-POSTROUTING',
          'PORTICO-NODE-PORT',
          'PORTICO-LOAD-BALANCER',
          'PORTICO-MARK-MASQ',
        ]),
    );
    await check('ipset', ['restore'], ipsetCleanup(ruleset.ipsets));
    assert.equal((await check('ipset', ['list', '-n'])).trim(), '');
  });
});
