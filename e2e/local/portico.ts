/**
 * Runs Portico's own components on the local cluster, as the Helm chart runs them on a real one:
 * the controller-manager (controllers on the leader, admission webhooks) as a child process with a
 * serving certificate, the webhook configurations that route Services and LoadBalancerIPPools to
 * it, and, with the dataplane, one agent per node namespace announcing LoadBalancer IPs on the LAN.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { LOAD_BALANCER_IP_POOL_CRD } from '../../api/loadbalancerippool.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../webhooks/certificates.ts';
import { webhookConfigurations } from '../../webhooks/configurations.ts';
import type { LocalCluster } from './cluster.ts';
import { lanInterface } from './netns.ts';
import { type NodeAgents, startNodeAgents } from './node-agents.ts';
import type { KubeRest } from './rest.ts';

const controllerManagerScript = new URL('../../controllers/portico-controller-manager.ts', import.meta.url)
  .pathname;

/** The namespace Portico keeps its own objects in (allocation ConfigMaps, Leases). */
export const PORTICO_NAMESPACE = 'portico-system';

/**
 * Where LoadBalancerIPPools for L2 announcement go in the local cluster: outside the pod CIDRs,
 * the LAN and the ClusterIP range. The LAN client reaches it on-link, so it resolves these
 * addresses with ARP and the announcing node answers, as a host on a real LAN would.
 */
export const LOCAL_L2_POOL_CIDR = '198.18.200.0/24';

/** Options of {@link startPortico}. */
export interface PorticoOptions {
  readonly cluster: LocalCluster;
  readonly rest: KubeRest;
  readonly apiServerUrl: string;
  readonly kubeconfigPath: string;
  /** Where certificates and component logs go. */
  readonly dataDir: string;
  /** The agents' `--mode`. */
  readonly proxyMode: string;
  readonly logLevel: string;
  /** Flags added to the controller-manager's command line (e.g. `--endpoint-updates-batch-period`). */
  readonly controllerManagerArgs?: readonly string[];
}

/** The running components; `stop` ends them all. */
export interface Portico {
  /** Where each component writes its log. */
  readonly logFiles: readonly string[];
  /** The node agents, when the dataplane is on. */
  readonly agents: NodeAgents | undefined;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port from the kernel');
  return address.port;
}

async function waitUntilServing(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the controller-manager exited with ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the controller-manager did not become ready at ${url} within ${timeoutMs} ms`);
}

/**
 * Starts the controller-manager (webhooks registered in the API server before it returns, so
 * every Service created afterwards gets its ClusterIP) and, with the dataplane, the agents.
 */
export async function startPortico(options: PorticoOptions): Promise<Portico> {
  const { rest } = options;
  const tlsDir = join(options.dataDir, 'webhook-tls');
  const logDir = join(options.dataDir, 'logs');
  await mkdir(tlsDir, { recursive: true });
  await mkdir(logDir, { recursive: true });
  await rest.createUnlessExists('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: PORTICO_NAMESPACE },
  });
  // The chart installs the CRD from crds/ before anything else; the LoadBalancer controller watches pools.
  await rest.createUnlessExists(
    '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    LOAD_BALANCER_IP_POOL_CRD,
  );

  const ca = await createCertificateAuthority(tlsDir, 'portico-local-webhook-ca');
  const certFile = join(tlsDir, 'tls.crt');
  const keyFile = join(tlsDir, 'tls.key');
  await issueServingCertificate(ca, 'portico-webhook', ['IP:127.0.0.1', 'DNS:localhost'], certFile, keyFile);
  const webhookPort = await freePort();
  const healthPort = await freePort();
  const metricsPort = await freePort();

  const controllerManagerLog = join(logDir, 'controller-manager.log');
  const controllerManager = spawn(
    process.execPath,
    [
      controllerManagerScript,
      '--kubeconfig',
      options.kubeconfigPath,
      '--namespace',
      PORTICO_NAMESPACE,
      '--webhook-addr',
      `127.0.0.1:${webhookPort}`,
      '--tls-cert-file',
      certFile,
      '--tls-key-file',
      keyFile,
      '--health-addr',
      `127.0.0.1:${healthPort}`,
      '--metrics-addr',
      `127.0.0.1:${metricsPort}`,
      '--log-level',
      options.logLevel,
      ...(options.controllerManagerArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logStream = createWriteStream(controllerManagerLog);
  controllerManager.stdout?.pipe(logStream);
  controllerManager.stderr?.pipe(logStream);

  let agents: NodeAgents | undefined;
  const stop = async (): Promise<void> => {
    await agents?.stop();
    if (controllerManager.exitCode === null) {
      controllerManager.kill('SIGTERM');
      const exited = once(controllerManager, 'exit');
      const timeout = new Promise((resolve) => setTimeout(resolve, 10_000).unref());
      await Promise.race([exited, timeout]);
      if (controllerManager.exitCode === null) controllerManager.kill('SIGKILL');
    }
  };

  try {
    await waitUntilServing(controllerManager, `http://127.0.0.1:${healthPort}/readyz`, 60_000);
    const { mutating, validating } = webhookConfigurations(
      'portico',
      { url: `https://127.0.0.1:${webhookPort}` },
      ca.caPem,
    );
    await rest.createUnlessExists(
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      mutating,
    );
    await rest.createUnlessExists(
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      validating,
    );
    const dataplane = options.cluster.dataplane;
    if (dataplane !== undefined) {
      const client = options.cluster.client;
      if (client !== undefined) {
        await dataplane.ip.inNamespace(client.namespace, [
          'route',
          'replace',
          LOCAL_L2_POOL_CIDR,
          'dev',
          lanInterface,
        ]);
      }
      agents = await startNodeAgents({
        nodes: dataplane.nodes,
        apiServerUrl: options.apiServerUrl,
        kubeconfigPath: options.kubeconfigPath,
        agentArgs: [
          '--mode',
          options.proxyMode,
          '--cluster-cidr',
          options.cluster.nodes.map((node) => node.podCidr).join(','),
          '--log-level',
          options.logLevel,
        ],
        // As the chart's DaemonSet sets them: Leases beside Portico's other objects, and the LAN
        // interface named, as on nodes with several interfaces.
        agentEnv: {
          PORTICO_L2_ANNOUNCE: 'true',
          POD_NAMESPACE: PORTICO_NAMESPACE,
          PORTICO_L2_INTERFACE: lanInterface,
        },
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { logFiles: [controllerManagerLog], agents, stop };
}
