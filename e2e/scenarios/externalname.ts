/**
 * ExternalName Service (examples/externalname-service, seed 003): a DNS alias only. Portico
 * allocates no ClusterIP, writes no EndpointSlice and programs no rule for it. In kind, CoreDNS
 * answers its name with a CNAME to the external name.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { SCENARIO_NAMESPACE, type Scenario } from './driver.ts';
import { manifestList, rulesOfEveryNode, waitUntilAgentsCaughtUp } from './service-checks.ts';

const exampleService = new URL('../../examples/externalname-service/service.yaml', import.meta.url);

interface ExampleService {
  metadata: { name: string; namespace?: string };
  spec: { externalName: string };
}

/**
 * The example's Service moved into the scenario namespace (the example lives in `prod`, which the
 * scenarios do not own and so could not delete afterwards).
 */
async function loadExample(): Promise<ExampleService> {
  const service = parse(await readFile(exampleService, 'utf8')) as ExampleService;
  service.metadata.namespace = SCENARIO_NAMESPACE;
  return service;
}

/** The ExternalName scenario; see the module comment. */
export const externalNameServiceScenario: Scenario = {
  name: 'ExternalName Service: no ClusterIP, no slices, no rules',
  async run(driver) {
    const service = await loadExample();
    const name = service.metadata.name;
    const objects = manifestList([service]);
    await driver.apply(objects);
    try {
      assert.equal(await driver.read(`service/${name}`, '{.spec.type}'), 'ExternalName');
      assert.equal(await driver.read(`service/${name}`, '{.spec.clusterIP}'), '');

      await waitUntilAgentsCaughtUp(driver);
      assert.equal(
        await driver.read(
          'endpointslices',
          `{.items[?(@.metadata.labels.kubernetes\\.io/service-name=="${name}")].metadata.name}`,
        ),
        '',
        `no EndpointSlice, not even an empty one, for ${name}`,
      );
      for (const [node, rules] of await rulesOfEveryNode(driver)) {
        assert.ok(!rules.includes(`${SCENARIO_NAMESPACE}/${name}`), `the rules of ${node} mention ${name}`);
        assert.ok(
          !rules.includes(service.spec.externalName),
          `the rules of ${node} mention the external name`,
        );
      }

      if (driver.driverName === 'kind') {
        // The local cluster has no DNS server; in kind CoreDNS serves the alias.
        await driver.ensureClient();
        const answer = await driver.execInClient([
          'nslookup',
          '-type=CNAME',
          `${name}.${SCENARIO_NAMESPACE}.svc.cluster.local`,
        ]);
        assert.match(
          answer,
          new RegExp(`canonical name = ${service.spec.externalName.replaceAll('.', '\\.')}`),
        );
      }
    } finally {
      await driver.delete(objects);
    }
  },
};
