/**
 * The Service allocation pieces that the webhook, release and repair tests (and the replica
 * process) build the same way against a local API server: allocators over its ConfigMaps, an
 * indexed Services cache, the webhook server on loopback, and Services that already hold
 * addresses.
 */
import type { CoreV1Api, KubeConfig, V1Service } from '@kubernetes/client-node';
import { parseServiceClusterIPRanges } from '../../allocators/cluster-ip-range.ts';
import { KubeConfigMapClient } from '../../allocators/configmap-client.ts';
import { NodePortRange } from '../../allocators/node-port-range.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import type { KubeJsonClient } from '../../controllers/runtime/kube.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import { clusterIPLookup } from '../endpoints/validate.ts';
import { webhookRoutes } from '../routes.ts';
import { WebhookServer } from '../server.ts';
import { ServiceAllocators } from '../services/allocators.ts';
import { serviceIndexers } from '../services/held.ts';

/** The Service CIDR the tests allocate from, inside the 198.18.0.0/15 benchmarking range. */
export const TEST_SERVICE_CIDR = '198.19.0.0/16';

/** Allocators over the allocation ConfigMaps in `namespace`: `range` and the default NodePort range. */
export function testServiceAllocators(
  api: KubeJsonClient,
  namespace: string,
  range: string = TEST_SERVICE_CIDR,
): ServiceAllocators {
  return new ServiceAllocators({
    client: new KubeConfigMapClient(api),
    namespace,
    ranges: {
      serviceCIDRs: parseServiceClusterIPRanges(range),
      nodePortRange: new NodePortRange(),
    },
  });
}

/** An unstarted Services informer with the indexes the allocation code looks addresses up in. */
export function indexedServicesInformer(kubeConfig: KubeConfig, logger: Logger): Informer<V1Service> {
  return new Informer<V1Service>({
    kubeConfig,
    path: '/api/v1/services',
    indexers: serviceIndexers,
    logger,
  });
}

/** What {@link loopbackWebhookServer} serves from. */
export interface LoopbackWebhookServerOptions {
  readonly allocators: ServiceAllocators;
  readonly services: Informer<V1Service>;
  readonly certFile: string;
  readonly keyFile: string;
  readonly logger: Logger;
}

/** An unstarted webhook server with every Portico route, on 127.0.0.1 and a free port. */
export function loopbackWebhookServer(options: LoopbackWebhookServerOptions): WebhookServer {
  const { allocators, services } = options;
  return new WebhookServer({
    address: { host: '127.0.0.1', port: 0 },
    certFile: options.certFile,
    keyFile: options.keyFile,
    routes: webhookRoutes({
      allocators,
      isClusterIP: clusterIPLookup((index, value) => services.byIndex(index, value)),
    }),
    logger: options.logger,
  });
}

/**
 * Creates Service `name` in `default` already holding `ip` (and `nodePort`, which makes it a
 * NodePort Service), as if the mutating webhook had allocated them.
 */
export async function createServiceHolding(
  core: CoreV1Api,
  name: string,
  ip: string,
  nodePort?: number,
): Promise<void> {
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        type: nodePort === undefined ? 'ClusterIP' : 'NodePort',
        clusterIP: ip,
        clusterIPs: [ip],
        selector: { app: name },
        ports: [{ port: 80, ...(nodePort === undefined ? {} : { nodePort }) }],
      },
    },
  });
}
