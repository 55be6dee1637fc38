/**
 * Every shared scenario, in the order the suites run them, and {@link runScenarios}, which the
 * kind suite (e2e/kind/run.ts) calls once per proxy mode. The local suite (local.test.ts) makes one
 * `node:test` test of each instead.
 */
import {
  clusterIpDemoScenario,
  deletedPodLeavesRotationScenario,
  noEndpointsRefusedScenario,
  sessionAffinityScenario,
} from './clusterip.ts';
import type { DriverName, ProxyMode, Scenario, ScenarioDriver } from './driver.ts';
import {
  externalAndIngressIpScenario,
  externalTrafficPolicyLocalScenario,
  loadBalancerSourceRangesScenario,
  nodePortScenario,
} from './external-traffic.ts';
import { externalNameServiceScenario } from './externalname.ts';
import { headlessServiceScenario } from './headless.ts';
import { loadBalancerPoolScenario } from './loadbalancer.ts';
import { multiPortServiceScenario } from './multi-port.ts';
import { readinessProbeFailureScenario } from './probe-failure.ts';
import { selectorlessServiceScenario } from './selectorless.ts';

/** The scenarios; a scenario that deletes a demo pod comes after the ones that count them. */
export const SCENARIOS: readonly Scenario[] = [
  clusterIpDemoScenario,
  noEndpointsRefusedScenario,
  sessionAffinityScenario,
  nodePortScenario,
  externalAndIngressIpScenario,
  externalTrafficPolicyLocalScenario,
  loadBalancerSourceRangesScenario,
  deletedPodLeavesRotationScenario,
  headlessServiceScenario,
  externalNameServiceScenario,
  selectorlessServiceScenario,
  multiPortServiceScenario,
  readinessProbeFailureScenario,
  loadBalancerPoolScenario,
];

/** Whether `scenario` is meant for this driver and mode. */
export function appliesTo(scenario: Scenario, driverName: DriverName, mode: ProxyMode): boolean {
  return (scenario.drivers?.includes(driverName) ?? true) && (scenario.modes?.includes(mode) ?? true);
}

/**
 * Runs every scenario that applies to the driver, in order, logging a line before and after each
 * to `log`; the first failure stops the run and is rethrown with the scenario's name (the original
 * error as its cause).
 */
export async function runScenarios(
  driver: ScenarioDriver,
  scenarios: readonly Scenario[] = SCENARIOS,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<void> {
  await driver.ensureClient();
  for (const scenario of scenarios) {
    const label = `[${driver.driverName}/${driver.mode}] ${scenario.name}`;
    if (!appliesTo(scenario, driver.driverName, driver.mode)) {
      log(`-- skip ${label}: not for this driver or mode`);
      continue;
    }
    log(`-- run  ${label}`);
    const started = performance.now();
    try {
      await scenario.run(driver);
    } catch (error) {
      log(`-- FAIL ${label}`);
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(
        `scenario "${scenario.name}" failed in ${driver.driverName}/${driver.mode}: ${reason}`,
        {
          cause: error,
        },
      );
    }
    log(`-- ok   ${label} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}
