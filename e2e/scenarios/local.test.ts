/**
 * Every shared scenario on the local driver, once per proxy mode (`--mode ipvs` falls back to
 * iptables on a kernel without IPVS), each mode on a cluster of its own brought up the `npm start`
 * way. One test per scenario, in the order of the list, so a failure names its scenario.
 */
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { newRunId } from '../local/netns.ts';
import { PROXY_MODES } from './driver.ts';
import { appliesTo, SCENARIOS } from './index.ts';
import { LocalScenarioDriver } from './local-driver.ts';

const LOG_LINES_ON_FAILURE = 40;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

for (const mode of PROXY_MODES) {
  describe(`shared scenarios on the local cluster, portico-agent --mode ${mode}`, {
    skip: isRoot ? false : 'needs root and iproute2',
  }, () => {
    let driver: LocalScenarioDriver | undefined;

    before(async () => {
      driver = await LocalScenarioDriver.start({ mode, runId: newRunId() });
      await driver.ensureClient();
    });

    after(async () => {
      const started = driver;
      driver = undefined;
      await started?.stop();
    });

    for (const scenario of SCENARIOS.filter((candidate) => appliesTo(candidate, 'local', mode))) {
      test(scenario.name, async (t) => {
        if (driver === undefined) throw new Error('the local cluster did not start');
        try {
          await scenario.run(driver);
        } catch (error) {
          // The data directory goes with the cluster: keep the end of each log in the report.
          for (const file of driver.logFiles) {
            const tail = (await readFile(file, 'utf8')).split('\n').slice(-LOG_LINES_ON_FAILURE);
            t.diagnostic(`last lines of ${file}:\n${tail.join('\n')}`);
          }
          throw error;
        }
      });
    }
  });
}
