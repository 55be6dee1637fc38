import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { servicePortHash } from '../iptables/names.ts';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import { affinitySetName, BASE_CHAINS, nftServiceChainNames } from './names.ts';
import { type NftablesRuleset, NftOwnedObjects, renderNftablesRules } from './render.ts';
import { renderNftablesFull, TEST_NFTABLES_RENDER_OPTIONS } from './test-helpers.ts';
import { type SimulatedNftables, simulateNftables } from './trace.ts';

const TABLE = 'ip portico';
const seedService = makeService('clusteripservice', {
  clusterIP: '10.110.244.138',
  ports: [{ port: 8080, protocol: 'TCP', targetPort: 80 }],
});
const seedSlice = makeSlice(
  'clusteripservice',
  ['10.244.1.5', '10.244.1.6'].map((ip) => ({ ip, node: 'node-b' })),
  { ports: [{ name: '', port: 80 }] },
);

/** Everything in the simulated table, for comparing a chain of partial syncs with one full sync. */
function contents(nft: SimulatedNftables): unknown {
  return {
    chains: nft.chains(TABLE).map((chain) => [chain, nft.rules(TABLE, chain)]),
    sets: nft.sets(TABLE).map((set) => [set, nft.elements(TABLE, set)]),
  };
}

describe('names', () => {
  test('per-service names read as namespace/service/protocol/port, share the iptables hash and hold no colons', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(
      makeService('web', {
        clusterIPs: ['fd00:10:96::10'],
        clusterIP: 'fd00:10:96::10',
        ipFamilies: ['IPv6'],
      }),
    );
    tracker.updateEndpointSlice(makeSlice('web', [{ ip: 'fd00:10:244::5' }]));
    const port = tracker.snapshot().desired.IPv6.servicePorts[0]!;
    const hash = servicePortHash('default/web:http', 'TCP').slice(0, 8);
    assert.equal(nftServiceChainNames(port).cluster, `service-${hash}-default/web/tcp/http`);
    assert.match(
      affinitySetName(port, port.endpoints[0]!),
      /^affinity-[A-Z2-7]{8}-default\/web\/tcp\/http__fd00\.10\.244\.\.5\/8080$/,
    );
  });

  test('base chains use kube-proxy’s hooks and priorities (dstnat -100, srcnat 100)', () => {
    const script = renderNftablesFull([seedService], [seedSlice]).script;
    for (const base of BASE_CHAINS)
      assert.ok(
        script.includes(
          `add chain ${TABLE} ${base.name} { type ${base.type} hook ${base.hook} priority ${base.priority} ; }`,
        ),
        base.name,
      );
    assert.deepEqual(
      BASE_CHAINS.map((base) => `${base.name}@${base.priority}`),
      [
        'filter-prerouting@-110',
        'filter-input@-110',
        'filter-forward@-110',
        'filter-output@-110',
        'filter-output-post-dnat@-90',
        'nat-prerouting@-100',
        'nat-output@-100',
        'nat-postrouting@100',
      ],
    );
  });
});

describe('golden text', () => {
  test('the seed’s ClusterIP Service: no chain of its own; a shared random-endpoint chain picks a slot of endpoint-slots-tcp; hairpin pairs', () => {
    const script = renderNftablesFull([seedService], [seedSlice]).script;
    const perService = script.slice(script.indexOf('add chain ip portico random-endpoint/tcp/2'));
    assert.equal(
      perService,
      `add chain ip portico random-endpoint/tcp/2
flush chain ip portico random-endpoint/tcp/2
add rule ip portico random-endpoint/tcp/2 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip portico random-endpoint/tcp/2 dnat ip addr . port to ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoint-slots-tcp
add element ip portico cluster-ips { 10.110.244.138 }
add element ip portico service-ips { 10.110.244.138 . tcp . 8080 : goto random-endpoint/tcp/2 }
add element ip portico endpoint-slots-tcp { 10.110.244.138 . tcp . 8080 . 0 : 10.244.1.5 . 80, 10.110.244.138 . tcp . 8080 . 1 : 10.244.1.6 . 80 }
add element ip portico hairpin-endpoints { 10.244.1.5 . 10.244.1.5, 10.244.1.6 . 10.244.1.6 }
`,
    );
    assert.match(
      script,
      /add map ip portico endpoint-slots-udp \{ typeof ip daddr \. meta l4proto \. th dport \. numgen random mod 1 : ip daddr \. udp dport ; comment "[^"]+" ; \}\nflush map ip portico endpoint-slots-udp\n/,
    );
    assert.match(
      script,
      /add rule ip portico masquerading ct status dnat ip saddr \. ip daddr @hairpin-endpoints masquerade fully-random\n/,
    );
    assert.match(script, /add rule ip portico masquerading masquerade fully-random\n/);
    assert.match(
      script,
      /add rule ip portico services ip daddr \. meta l4proto \. th dport vmap @service-ips\n/,
    );
  });

  test('a Service reachable from outside keeps its own chains: numgen rules with 1/(n-i) that DNAT', () => {
    const service = makeService('np', {
      type: 'NodePort',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
    });
    const script = renderNftablesFull(
      [service],
      [makeSlice('np', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }])],
    ).script;
    const svc = 'service-QUMPV5Z3-default/np/tcp/http';
    const ext = 'external-QUMPV5Z3-default/np/tcp/http';
    assert.equal(
      script.slice(script.indexOf(`flush chain ip portico ${svc}`)),
      `flush chain ip portico ${svc}
flush chain ip portico ${ext}
add rule ip portico ${svc} ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip portico ${svc} meta l4proto tcp numgen random mod 2 == 0 dnat to 10.244.1.5:8080
add rule ip portico ${svc} meta l4proto tcp dnat to 10.244.1.6:8080
add rule ip portico ${ext} jump mark-for-masquerade
add rule ip portico ${ext} goto ${svc}
add element ip portico cluster-ips { 10.96.0.10 }
add element ip portico service-ips { 10.96.0.10 . tcp . 80 : goto ${svc} }
add element ip portico service-nodeports { tcp . 30080 : goto ${ext} }
add element ip portico hairpin-endpoints { 10.244.1.5 . 10.244.1.5, 10.244.1.6 . 10.244.1.6 }
`,
    );
    assert.doesNotMatch(script, /random-endpoint\//);
  });

  test('a Service without endpoints gets only no-endpoint map elements: reject-chain for cluster IP and node port', () => {
    const service = makeService('empty', {
      type: 'NodePort',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30083 }],
    });
    const script = renderNftablesFull([service], []).script;
    assert.match(
      script,
      /add element ip portico no-endpoint-services \{ 10\.96\.0\.10 \. tcp \. 80 : goto reject-chain \}/,
    );
    assert.match(
      script,
      /add element ip portico no-endpoint-nodeports \{ tcp \. 30083 : goto reject-chain \}/,
    );
    assert.doesNotMatch(script, /add element ip portico service-ips|add chain ip portico \S+\//);
  });

  test('affinity: one timeout set per endpoint, checked before the random choice and updated with the DNAT', () => {
    const service = makeService('sticky', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    });
    const script = renderNftablesFull([service], [makeSlice('sticky', [{ ip: '10.244.1.5' }])]).script;
    assert.match(
      script,
      /add set ip portico affinity-\w{8}-default\/sticky\/tcp\/http__10\.244\.1\.5\/8080 \{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; \}/,
    );
    assert.match(
      script,
      /service-\S+ ip saddr @(affinity-\S+) meta l4proto tcp update @\1 \{ ip saddr \} dnat to 10\.244\.1\.5:8080\nadd rule ip portico service-\S+ meta l4proto tcp update @\1 \{ ip saddr \} dnat to 10\.244\.1\.5:8080\n/,
    );
  });

  test('rendering is deterministic whatever order objects arrive in', () => {
    const services = [
      seedService,
      makeService('b', { clusterIP: '10.96.0.11' }),
      makeService('a', { clusterIP: '10.96.0.12' }),
    ];
    const slices = [
      seedSlice,
      makeSlice('a', [{ ip: '10.244.3.1' }, { ip: '10.244.3.2' }]),
      makeSlice('b', [{ ip: '10.244.4.1' }]),
    ];
    assert.equal(
      renderNftablesFull(services, slices).script,
      renderNftablesFull([...services].reverse(), [...slices].reverse()).script,
    );
  });
});

describe('partial sync', () => {
  test('a chain of partial syncs ends where one full sync would, sending only what changed', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    tracker.updateService(seedService);
    tracker.updateEndpointSlice(seedSlice);
    tracker.updateService(
      makeService('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    );
    tracker.updateEndpointSlice(
      makeSlice('dns', [{ ip: '10.244.2.53' }], { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    );
    let snapshot = tracker.snapshot();
    const render = (existing: NftablesRuleset | null, changed: ReadonlySet<string> | 'all') =>
      renderNftablesRules(
        snapshot.desired.IPv4,
        TEST_NODE,
        { changedServices: changed, existingObjects: existing?.ownedObjects ?? new Set() },
        TEST_NFTABLES_RENDER_OPTIONS,
      );
    let previous = render(null, 'all');
    const kernel = simulateNftables(previous.script);

    const steps: [string, () => void][] = [
      [
        'an endpoint leaves',
        () =>
          tracker.updateEndpointSlice(
            makeSlice('clusteripservice', [{ ip: '10.244.1.5', node: 'node-b' }], {
              ports: [{ name: '', port: 80 }],
            }),
          ),
      ],
      [
        'a Service arrives',
        () =>
          tracker.updateService(
            makeService('new', {
              clusterIP: '10.96.0.77',
              type: 'NodePort',
              ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30077 }],
            }),
          ),
      ],
      ['its endpoints arrive', () => tracker.updateEndpointSlice(makeSlice('new', [{ ip: '10.244.7.1' }]))],
      [
        'it gains session affinity',
        () =>
          tracker.updateService(
            makeService('new', {
              clusterIP: '10.96.0.77',
              type: 'NodePort',
              ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30077 }],
              sessionAffinity: 'ClientIP',
              sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
            }),
          ),
      ],
      [
        'its affinity timeout changes',
        () =>
          tracker.updateService(
            makeService('new', {
              clusterIP: '10.96.0.77',
              type: 'NodePort',
              ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30077 }],
              sessionAffinity: 'ClientIP',
              sessionAffinityConfig: { clientIP: { timeoutSeconds: 90 } },
            }),
          ),
      ],
      [
        'its endpoints go unready',
        () => tracker.updateEndpointSlice(makeSlice('new', [{ ip: '10.244.7.1', ready: false }])),
      ],
      ['a Service is deleted', () => tracker.deleteService('default', 'dns')],
    ];
    for (const [name, change] of steps) {
      change();
      snapshot = tracker.snapshot();
      const partial = render(previous, snapshot.changedServices);
      assert.equal(partial.full, false);
      assert.doesNotMatch(partial.script, /flush map|flush set|add table/, name);
      for (const unchanged of ['clusteripservice', 'dns', 'new'].filter(
        (key) => !snapshot.changedServices.has(`default/${key}`),
      ))
        assert.doesNotMatch(
          partial.script,
          new RegExp(`(add|flush) chain ip portico \\S+-default/${unchanged}/`),
          name,
        );
      kernel.apply(partial.script);
      // The sync after a change deletes what the change flushed.
      const settle = render(partial, new Set());
      kernel.apply(settle.script);
      previous = settle;
      const expected = simulateNftables(render(null, 'all').script);
      assert.deepEqual(contents(kernel), contents(expected), name);
      assert.equal(
        render(settle, new Set()).script,
        '',
        `${name}: a sync with nothing changed sends nothing`,
      );
    }
  });

  test('a partial sync over the previous ownedObjects writes what one over a plain copy of them writes, also after many layers', () => {
    const tracker = new ChangeTracker({ node: TEST_NODE });
    for (let index = 0; index < 5; index++) {
      tracker.updateService(makeService(`s${index}`, { clusterIP: `10.96.1.${index}` }));
      tracker.updateEndpointSlice(
        makeSlice(`s${index}`, [{ ip: `10.244.9.${index}` }, { ip: '10.244.9.100' }]),
      );
    }
    const render = (changed: ReadonlySet<string> | 'all', existing: ReadonlySet<string>) =>
      renderNftablesRules(
        tracker.snapshot().desired.IPv4,
        TEST_NODE,
        { changedServices: changed, existingObjects: existing },
        TEST_NFTABLES_RENDER_OPTIONS,
      );
    let previous = render('all', new Set());
    assert.ok(previous.ownedObjects instanceof NftOwnedObjects);
    const kernel = simulateNftables(previous.script);
    for (let round = 1; round <= 40; round++) {
      const index = round % 5;
      // Endpoints come and go, sharing 10.244.9.100 (one hairpin element, several owners).
      const endpoints = [{ ip: `10.244.9.${index}` }, { ip: `10.244.8.${round}` }];
      if (round % 3 !== 0) endpoints.push({ ip: '10.244.9.100' });
      tracker.updateEndpointSlice(makeSlice(`s${index}`, endpoints));
      const changed = new Set([`default/s${index}`]);
      const snapshot = tracker.snapshot();
      const scope = (existing: ReadonlySet<string>) => ({
        changedServices: changed,
        existingObjects: existing,
      });
      const layered = renderNftablesRules(
        snapshot.desired.IPv4,
        TEST_NODE,
        scope(previous.ownedObjects),
        TEST_NFTABLES_RENDER_OPTIONS,
      );
      const plain = renderNftablesRules(
        snapshot.desired.IPv4,
        TEST_NODE,
        scope(new Set(previous.ownedObjects)),
        TEST_NFTABLES_RENDER_OPTIONS,
      );
      assert.equal(layered.script, plain.script, `round ${round}`);
      assert.deepEqual(new Set(layered.ownedObjects), new Set(plain.ownedObjects), `round ${round}`);
      assert.equal(layered.ownedObjects.size, plain.ownedObjects.size, `round ${round}`);
      kernel.apply(layered.script);
      previous = layered;
    }
    assert.deepEqual(contents(kernel), contents(simulateNftables(render('all', new Set()).script)));
  });

  test('a full sync over stale objects from an earlier run flushes them, and the next deletes them', () => {
    const first = renderNftablesFull([seedService], [seedSlice]);
    const kernel = simulateNftables(first.script);
    const tracker = new ChangeTracker({ node: TEST_NODE });
    const full = renderNftablesRules(
      tracker.snapshot().desired.IPv4,
      TEST_NODE,
      { changedServices: 'all', existingObjects: first.ownedObjects },
      TEST_NFTABLES_RENDER_OPTIONS,
    );
    kernel.apply(full.script);
    assert.ok(kernel.chains(TABLE).some((chain) => chain.includes('/')));
    const next = renderNftablesRules(
      tracker.snapshot().desired.IPv4,
      TEST_NODE,
      { changedServices: new Set(), existingObjects: full.ownedObjects },
      TEST_NFTABLES_RENDER_OPTIONS,
    );
    kernel.apply(next.script);
    assert.ok(!kernel.chains(TABLE).some((chain) => chain.includes('/')));
    assert.deepEqual(kernel.elements(TABLE, 'service-ips'), []);
  });
});
