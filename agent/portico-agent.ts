/**
 * `portico-agent`: the node agent's entrypoint. Exit codes: 0 after `--help` or `--cleanup`,
 * 2 for a bad command line, 1 when the agent cannot start.
 */
import { hostname } from 'node:os';
import { loadKubeConfig } from '../controllers/runtime/kube.ts';
import { createLogger, errorFields } from '../controllers/runtime/logging.ts';
import { cleanupRules, NodeAgent } from './agent.ts';
import { type AgentConfig, FlagError, parseAgentFlags, USAGE } from './flags.ts';
import { resolveProxyMode } from './ipvs/detect.ts';
import { l2SettingsFromEnv, startL2Announcement } from './l2/l2-announcement.ts';

async function main(): Promise<number> {
  let config: AgentConfig | null;
  try {
    config = parseAgentFlags(process.argv.slice(2), hostname());
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`portico-agent: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (config === null) {
    process.stdout.write(USAGE);
    return 0;
  }
  const logger = createLogger({
    level: config.logLevel,
    fields: { component: 'portico-agent', node: config.hostname },
  });
  let mode: AgentConfig['mode'];
  try {
    mode = await resolveProxyMode(config.mode, {
      noFallback: config.noFallback,
      log: (message) => logger.warn(message),
    });
  } catch (error) {
    process.stderr.write(`portico-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  // From here on the mode is the one that runs, which /proxyMode and the logs report.
  config = { ...config, mode };
  try {
    if (config.cleanup) {
      await cleanupRules(config);
      logger.info('removed every Portico rule', { mode: config.mode });
      return 0;
    }
    const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfig });
    const agent = await NodeAgent.start({ config, kubeConfig, logger });
    logger.info('portico-agent started', {
      mode: config.mode,
      kubeconfig: source,
      healthzPort: agent.healthzPort,
      metricsPort: agent.metricsPort,
    });
    // L2 announcement of LoadBalancer IPs (agent/l2/README.md), on with PORTICO_L2_ANNOUNCE=true.
    const l2Settings = l2SettingsFromEnv(process.env);
    const l2 =
      l2Settings === undefined
        ? undefined
        : startL2Announcement({ kubeConfig, nodeName: config.hostname, logger, ...l2Settings });
    l2?.synced.catch((error: unknown) => logger.error('L2 announcement failed to start', errorFields(error)));
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    // Addresses go and leases are released before the rules, so traffic moves to another node first.
    await l2?.stop();
    await agent.stop();
    return 0;
  } catch (error) {
    logger.error('portico-agent failed', errorFields(error));
    return 1;
  }
}

process.exitCode = await main();
