/**
 * Kernel check (needs root): scripts are loaded with the real `nft` inside a network namespace
 * created for the test and deleted afterwards, also when the test fails. Nothing runs in the
 * host's own namespace. The same scripts go through the simulator, so a statement the kernel
 * refuses but the simulator accepts (or the other way round) fails here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import { addKernelCheckServices } from '../testing/kernel-services.ts';
import { useTestNetworkNamespace } from '../testing/netns.ts';
import { NftablesProxier } from './proxier.ts';
import type { NftablesRuleset } from './render.ts';
import { TEST_NFTABLES_RENDER_OPTIONS } from './test-helpers.ts';
import { SimulatedNftables } from './trace.ts';

describe('nft -f in a fresh network namespace', () => {
  const { run, check } = useTestNetworkNamespace();
  const sh = (...args: string[]) => check('nft', args);

  test('full sync, partial syncs, read-back, flush detection and cleanup on the real kernel', async () => {
    // Another program's table must survive everything we do.
    await run(
      'nft',
      ['-f', '-'],
      'add table ip foreign\nadd chain ip foreign keep { type filter hook input priority 0 ; }\nadd rule ip foreign keep counter\n',
    );

    const tracker = new ChangeTracker({ node: TEST_NODE });
    addKernelCheckServices(tracker);
    const v4 = new NftablesProxier({ family: 'IPv4', run, render: TEST_NFTABLES_RENDER_OPTIONS });
    const v6 = new NftablesProxier({ family: 'IPv6', run, render: TEST_NFTABLES_RENDER_OPTIONS });
    assert.equal(await v4.lostState(), true);
    assert.deepEqual(await v4.existingObjects(), new Set());

    let snapshot = tracker.snapshot();
    const simulated = new SimulatedNftables();
    const applyBoth = async (proxier: NftablesProxier, ruleset: NftablesRuleset) => {
      simulated.apply(ruleset.script);
      await proxier.apply(ruleset);
    };
    const full = v4.render(snapshot.desired.IPv4, TEST_NODE, {
      changedServices: 'all',
      existingObjects: new Set(),
    });
    await applyBoth(v4, full);
    await v6.apply(
      v6.render(snapshot.desired.IPv6, TEST_NODE, { changedServices: 'all', existingObjects: new Set() }),
    );
    assert.equal(await v4.lostState(), false);

    const listing = await sh('list', 'table', 'ip', 'portico');
    assert.match(listing, /map service-ips \{/);
    assert.match(listing, /10\.110\.244\.138 \. tcp \. 8080 : goto random-endpoint\/tcp\/4/);
    assert.match(listing, /10\.96\.0\.10 \. udp \. 53 : goto reject-chain/);
    assert.match(listing, /198\.18\.100\.1 \. tcp \. 80 : goto firewall-\w{8}-default\/lb\/tcp\/http/);
    assert.match(listing, /tcp \. 30080 : goto external-\w{8}-default\/lb\/tcp\/http/);
    assert.match(
      listing,
      /chain random-endpoint\/tcp\/4 \{[^}]*dnat ip to ip daddr \. meta l4proto \. tcp dport \. numgen random mod 4 map @endpoint-slots-tcp/,
    );
    assert.match(listing, /10\.110\.244\.138 \. tcp \. 8080 \. 0 : 10\.244\.1\.5 \. 80/);
    assert.match(listing, /10\.244\.1\.8 \. 10\.244\.1\.8/);
    assert.match(listing, /set affinity-\w{8}-default\/lb\/tcp\/http__10\.244\.0\.5\/8080 \{/);
    assert.match(listing, /update @affinity-\S+ \{ ip saddr \} dnat to 10\.244\.0\.5:8080/);
    assert.match(await sh('list', 'table', 'ip6', 'portico'), /\. 8080 \. 0 : fd00:10:244:1::5 \. 80/);
    assert.deepEqual(
      await v4.existingObjects(),
      new Set([...full.ownedObjects].filter((key) => !key.startsWith('element'))),
    );

    // A second full sync over the first is accepted (affinity sets are re-added, not recreated).
    const again = v4.render(snapshot.desired.IPv4, TEST_NODE, {
      changedServices: 'all',
      existingObjects: full.ownedObjects,
    });
    await applyBoth(v4, again);

    // One endpoint leaves, the DNS and LB Services go away: a partial sync.
    tracker.updateEndpointSlice(
      makeSlice(
        'clusteripservice',
        ['10.244.1.5', '10.244.1.6', '10.244.1.7'].map((ip) => ({ ip })),
        {
          name: 'seed-v4',
          ports: [{ name: '', port: 80 }],
        },
      ),
    );
    tracker.deleteService('default', 'dns');
    tracker.deleteService('default', 'lb');
    snapshot = tracker.snapshot();
    const partial = v4.render(snapshot.desired.IPv4, TEST_NODE, {
      changedServices: snapshot.changedServices,
      existingObjects: again.ownedObjects,
    });
    assert.equal(partial.full, false);
    assert.doesNotMatch(partial.script, /flush map|add table/);
    assert.match(
      partial.script,
      /delete element ip portico no-endpoint-services \{ 10\.96\.0\.10 \. udp \. 53 \}/,
    );
    await applyBoth(v4, partial);
    const afterPartial = await sh('list', 'table', 'ip', 'portico');
    assert.match(afterPartial, /10\.110\.244\.138 \. tcp \. 8080 : goto random-endpoint\/tcp\/3/);
    assert.match(afterPartial, /numgen random mod 3 map @endpoint-slots-tcp/);
    // No Service has 4 endpoints any more: that chain is flushed now and deleted by the next sync.
    assert.match(afterPartial, /chain random-endpoint\/tcp\/4 \{\s*\}/);
    assert.doesNotMatch(afterPartial, /10\.96\.0\.10 \. udp/);
    assert.doesNotMatch(afterPartial, /10\.244\.1\.8/, 'its hairpin pair is gone too');
    // The LB Service's chains are flushed now and deleted by the next sync; its affinity sets go at once.
    assert.match(afterPartial, /chain external-\w{8}-default\/lb\/tcp\/http \{\s*\}/);
    assert.doesNotMatch(afterPartial, /affinity-|198\.18\.100\.1/);
    const next = v4.render(snapshot.desired.IPv4, TEST_NODE, {
      changedServices: new Set(),
      existingObjects: partial.ownedObjects,
    });
    await applyBoth(v4, next);
    assert.doesNotMatch(await sh('list', 'table', 'ip', 'portico'), /default\/lb/);
    assert.equal(
      v4.render(snapshot.desired.IPv4, TEST_NODE, {
        changedServices: new Set(),
        existingObjects: next.ownedObjects,
      }).script,
      '',
      'nothing changed: nothing sent',
    );
    const kernelServiceIPs = (await sh('list', 'map', 'ip', 'portico', 'service-ips')).match(
      /\S+ \. \w+ \. \d+ : goto [^\s,]+/g,
    );
    assert.deepEqual([...(kernelServiceIPs ?? [])].sort(), simulated.elements('ip portico', 'service-ips'));
    const kernelSlots = (await sh('list', 'map', 'ip', 'portico', 'endpoint-slots-tcp')).match(
      /\S+ \. \w+ \. \d+ \. \d+ : \S+ \. \d+/g,
    );
    assert.deepEqual([...(kernelSlots ?? [])].sort(), simulated.elements('ip portico', 'endpoint-slots-tcp'));
    assert.doesNotMatch(await sh('list', 'table', 'ip', 'portico'), /random-endpoint\/tcp\/4/);

    // Someone flushes the whole ruleset: detected; a full sync restores it.
    await sh('delete', 'table', 'ip', 'portico');
    assert.equal(await v4.lostState(), true);
    await v4.apply(
      v4.render(snapshot.desired.IPv4, TEST_NODE, {
        changedServices: 'all',
        existingObjects: await v4.existingObjects(),
      }),
    );
    assert.equal(await v4.lostState(), false);

    await v4.cleanup();
    await v6.cleanup();
    await v4.cleanup();
    assert.deepEqual((await sh('list', 'tables')).trim().split('\n'), ['table ip foreign']);
    assert.match(await sh('list', 'table', 'ip', 'foreign'), /counter/);
  });
});
