/**
 * Kernel check (needs root): rulesets are loaded with the real iptables-restore and
 * ip6tables-restore inside a network namespace created for the test and deleted afterwards, also
 * when the test fails. Nothing runs in the host's own namespace.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import { addKernelCheckServices } from '../testing/kernel-services.ts';
import { type TestNetworkNamespace, useTestNetworkNamespace } from '../testing/netns.ts';
import { CANARY_CHAIN, endpointChainName } from './names.ts';
import { type IptablesBackend, IptablesProxier } from './proxier.ts';
import { JUMP_RULES } from './render.ts';
import { TEST_RENDER_OPTIONS } from './test-helpers.ts';
import { simulate } from './trace.ts';

/** Chains (`-N` lines) of a table as the kernel lists them. */
async function kernelChains(
  namespace: TestNetworkNamespace,
  binary: string,
  table: string,
): Promise<string[]> {
  const listing = await namespace.check(binary, ['-t', table, '-S']);
  return listing
    .split('\n')
    .filter((line) => line.startsWith('-N '))
    .map((line) => line.slice(3))
    .sort();
}

for (const backend of ['nft', 'legacy'] as const satisfies IptablesBackend[]) {
  describe(`iptables-restore (${backend}) in a fresh network namespace`, () => {
    const namespace = useTestNetworkNamespace();
    const { run } = namespace;
    const sh = (command: string, ...args: string[]) => namespace.check(command, args);
    const iptables = `iptables-${backend}`;
    const ip6tables = `ip6tables-${backend}`;

    test('full sync, partial sync, flush detection, IPv6 and cleanup on the real kernel', async () => {
      // A foreign chain (another program's) must survive everything we do.
      await sh(iptables, '-t', 'nat', '-N', 'FOREIGN-CHAIN');
      await sh(iptables, '-t', 'nat', '-A', 'FOREIGN-CHAIN', '-j', 'RETURN');
      await sh(iptables, '-t', 'nat', '-A', 'PREROUTING', '-j', 'FOREIGN-CHAIN');
      await sh(iptables, '-t', 'filter', '-N', 'FOREIGN-FILTER');

      const tracker = new ChangeTracker({ node: TEST_NODE });
      addKernelCheckServices(tracker);
      const snapshot = tracker.snapshot();
      const v4 = new IptablesProxier({ family: 'IPv4', backend, run, render: TEST_RENDER_OPTIONS });
      const v6 = new IptablesProxier({ family: 'IPv6', backend, run, render: TEST_RENDER_OPTIONS });
      assert.deepEqual(await v4.existingServiceChains(), new Set());
      assert.equal(await v4.lostState(), true);

      const full = v4.render(snapshot.desired.IPv4, TEST_NODE, {
        changedServices: 'all',
        existingObjects: new Set(),
      });
      await v4.apply(full);
      const expected = simulate(full);
      const builtIn = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'FORWARD']);
      assert.deepEqual(
        await kernelChains(namespace, iptables, 'nat'),
        [...expected.chains('nat').filter((chain) => !builtIn.has(chain)), 'FOREIGN-CHAIN'].sort(),
      );
      assert.deepEqual(
        await kernelChains(namespace, iptables, 'filter'),
        [...expected.chains('filter').filter((chain) => !builtIn.has(chain)), 'FOREIGN-FILTER'].sort(),
      );
      const prerouting = await sh(iptables, '-t', 'nat', '-S', 'PREROUTING');
      assert.match(
        prerouting,
        /-A PREROUTING -m comment --comment "portico service portals" -j PORTICO-SERVICES/,
      );
      assert.equal(await v4.lostState(), false);
      // Applying the same full sync again must not duplicate the jumps.
      await v4.apply(full);
      for (const table of ['nat', 'filter'] as const) {
        const jumps = (await sh(`${iptables}-save`, '-t', table))
          .split('\n')
          .filter((line) => /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j PORTICO-/.test(line));
        assert.equal(
          jumps.length,
          JUMP_RULES.filter((jump) => jump.table === table).length,
          jumps.join('\n'),
        );
      }

      // One endpoint of the seed Service goes away: a partial sync.
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
      const next = tracker.snapshot();
      const partial = v4.render(next.desired.IPv4, TEST_NODE, {
        changedServices: next.changedServices,
        existingObjects: full.ownedObjects,
      });
      assert.equal(partial.full, false);
      await v4.apply(partial);
      const gone = endpointChainName('default/clusteripservice', 'TCP', '10.244.1.8:80');
      const natChains = await kernelChains(namespace, iptables, 'nat');
      assert.ok(!natChains.includes(gone), `${gone} should be deleted`);
      const afterPartial = simulate(
        v4.render(next.desired.IPv4, TEST_NODE, { changedServices: 'all', existingObjects: new Set() }),
      );
      assert.deepEqual(
        natChains,
        [...afterPartial.chains('nat').filter((chain) => !builtIn.has(chain)), 'FOREIGN-CHAIN'].sort(),
      );
      const lbChain = (await sh(iptables, '-t', 'nat', '-S'))
        .split('\n')
        .filter((line) => line.startsWith('-A PORTICO-FW-'));
      assert.equal(lbChain.length, 2, 'the unchanged LB Service keeps its firewall chain rules');

      // Someone deletes our canary: the agent must notice and resync in full.
      await sh(iptables, '-t', 'nat', '-X', CANARY_CHAIN);
      assert.equal(await v4.lostState(), true);
      await v4.apply(
        v4.render(next.desired.IPv4, TEST_NODE, {
          changedServices: 'all',
          existingObjects: await v4.existingServiceChains(),
        }),
      );
      assert.equal(await v4.lostState(), false);

      const fullV6 = v6.render(next.desired.IPv6, TEST_NODE, {
        changedServices: 'all',
        existingObjects: new Set(),
      });
      await v6.apply(fullV6);
      const v6Rules = await sh(ip6tables, '-t', 'nat', '-S');
      assert.match(v6Rules, /--to-destination \[fd00:10:244:1::5\]:80/);
      assert.match(v6Rules, /-d fd00:10:96::138\/128 .*-j PORTICO-SVC-/);

      await v4.cleanup();
      await v6.cleanup();
      for (const binary of [iptables, ip6tables]) {
        const save = (await sh(`${binary}-save`, '-t', 'nat')) + (await sh(`${binary}-save`, '-t', 'filter'));
        assert.doesNotMatch(save, /PORTICO-/, `${binary} still has Portico rules`);
      }
      assert.deepEqual(await kernelChains(namespace, iptables, 'nat'), ['FOREIGN-CHAIN']);
      assert.deepEqual(await kernelChains(namespace, iptables, 'filter'), ['FOREIGN-FILTER']);
      assert.match(await sh(iptables, '-t', 'nat', '-S', 'PREROUTING'), /-A PREROUTING -j FOREIGN-CHAIN/);
      assert.match(await sh(iptables, '-t', 'nat', '-S', 'FOREIGN-CHAIN'), /-A FOREIGN-CHAIN -j RETURN/);
    });

    test('the order of chain declarations changes nothing in the loaded tables', async () => {
      const tracker = new ChangeTracker({ node: TEST_NODE });
      addKernelCheckServices(tracker);
      const v4 = new IptablesProxier({ family: 'IPv4', backend, run, render: TEST_RENDER_OPTIONS });
      const full = v4.render(tracker.snapshot().desired.IPv4, TEST_NODE, {
        changedServices: 'all',
        existingObjects: new Set(),
      });
      const loaded = async (input: string) => {
        await namespace.check(`${iptables}-restore`, ['--noflush', '-w', '5'], input);
        const save = await sh(`${iptables}-save`, '-t', 'nat');
        await v4.cleanup();
        return save.split('\n').filter((line) => !line.startsWith('#'));
      };
      // The renderer declares chains in its own order for restore speed; ascending name order is
      // the plain alternative it must be equivalent to.
      const nameOrder = (text: string) => {
        const lines = text.split('\n');
        const declarations = lines.filter((line) => line.startsWith(':')).sort();
        let next = 0;
        return lines.map((line) => (line.startsWith(':') ? declarations[next++]! : line)).join('\n');
      };
      assert.notEqual(nameOrder(full.nat), full.nat, 'the renderer does not declare in name order');
      const rendered = await loaded(full.nat);
      assert.ok(rendered.some((line) => line.startsWith('-A PORTICO-SEP-')));
      assert.deepEqual(await loaded(nameOrder(full.nat)), rendered);
    });
  });
}
