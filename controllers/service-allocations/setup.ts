/**
 * Wires Service allocation into a controller manager: the allocators over their ConfigMaps, a
 * Services informer, the admission webhook server (every replica), and on the leader the
 * release controller and the repair loop.
 */
import type { KubeConfig, V1Service } from '@kubernetes/client-node';
import { KubeConfigMapClient } from '../../allocators/configmap-client.ts';
import type { ConfigMapClient } from '../../allocators/configmap-store.ts';
import { clusterIPLookup } from '../../webhooks/endpoints/validate.ts';
import { webhookRoutes } from '../../webhooks/routes.ts';
import { WebhookServer } from '../../webhooks/server.ts';
import { ServiceAllocators } from '../../webhooks/services/allocators.ts';
import { serviceIndexers } from '../../webhooks/services/held.ts';
import { ALLOCATOR_REPAIR_CONTROLLER, AllocatorRepairController } from '../allocator-repair/controller.ts';
import { Controller } from '../runtime/controller.ts';
import { EventRecorder } from '../runtime/events.ts';
import { Informer } from '../runtime/informer.ts';
import { kubeJsonClient } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { Manager } from '../runtime/manager.ts';
import type { ServiceAllocationConfig } from './flags.ts';
import { ServiceAllocationReleaser } from './release.ts';

/** Name of the release controller (logs, metrics). */
export const SERVICE_ALLOCATION_RELEASE_CONTROLLER = 'service-allocation-release';

/** Options of {@link setUpServiceAllocation}. */
export interface ServiceAllocationSetupOptions {
  /** Credentials for the API server. */
  readonly kubeConfig: KubeConfig;
  /** The manager to add the informer and the leader-only controllers to (before it starts). */
  readonly manager: Pick<Manager, 'addInformer' | 'addController'>;
  /** Portico's namespace, where the allocation ConfigMaps live. */
  readonly namespace: string;
  /** Decoded flags. */
  readonly config: ServiceAllocationConfig;
  /** Process logger. */
  readonly logger: Logger;
  /** Overrides the ConfigMap client (benchmarks count its calls). */
  readonly configMapClient?: ConfigMapClient;
  /** Repair leak grace period; two repair intervals when absent. */
  readonly leakGracePeriodMs?: number;
}

/** What {@link setUpServiceAllocation} built; the entrypoint starts and stops the webhook server. */
export interface ServiceAllocation {
  /** The allocators (one per family, and node ports). */
  readonly allocators: ServiceAllocators;
  /** The Services informer (added to the manager). */
  readonly services: Informer<V1Service>;
  /** The webhook server, when TLS files were given. */
  readonly webhookServer: WebhookServer | undefined;
  /** The repair loop (added to the manager). */
  readonly repair: AllocatorRepairController;
}

/**
 * Builds Service allocation and registers its parts with the manager. Reads every allocation
 * ConfigMap first and rejects (RangeMismatchError) when one belongs to another range than the
 * configured one, so a misconfigured replica refuses to start instead of allocating from the
 * wrong range.
 */
export async function setUpServiceAllocation(
  options: ServiceAllocationSetupOptions,
): Promise<ServiceAllocation> {
  const { kubeConfig, manager, namespace, config, logger } = options;
  const allocators = new ServiceAllocators({
    client: options.configMapClient ?? new KubeConfigMapClient(kubeJsonClient(kubeConfig)),
    namespace,
    ranges: { serviceCIDRs: config.serviceCIDRs, nodePortRange: config.nodePortRange },
  });
  await allocators.verifyStoredState();

  const services = new Informer<V1Service>({
    kubeConfig,
    path: '/api/v1/services',
    name: 'services-allocation',
    indexers: serviceIndexers,
    logger,
  });
  manager.addInformer(services);

  const leakGracePeriodMs = options.leakGracePeriodMs ?? 2 * config.repairIntervalMs;
  const releaser = new ServiceAllocationReleaser({
    allocators,
    services,
    logger: logger.child({ controller: SERVICE_ALLOCATION_RELEASE_CONTROLLER }),
    maxPendingAgeMs: leakGracePeriodMs / 2,
  });
  const releaseController = new Controller({
    name: SERVICE_ALLOCATION_RELEASE_CONTROLLER,
    reconciler: releaser,
    logger,
    concurrency: 4,
  });
  services.addEventHandler({
    onDelete: (service) => {
      const key = releaser.serviceDeleted(service);
      if (key !== undefined) releaseController.enqueue(key);
    },
    onUpdate: (old, next) => {
      if (old === next) return;
      const key = releaser.serviceUpdated(old, next);
      if (key !== undefined) releaseController.enqueue(key);
    },
  });
  manager.addController(releaseController);

  const repair = new AllocatorRepairController({
    allocators,
    services,
    events: new EventRecorder({ kubeConfig, component: ALLOCATOR_REPAIR_CONTROLLER, logger }),
    logger: logger.child({ controller: ALLOCATOR_REPAIR_CONTROLLER }),
    intervalMs: config.repairIntervalMs,
    leakGracePeriodMs,
  });
  manager.addController(repair);

  let webhookServer: WebhookServer | undefined;
  if (config.tls === undefined) {
    logger.warn('no --tls-cert-file/--tls-key-file: admission webhooks are not served by this replica');
  } else {
    webhookServer = new WebhookServer({
      address: config.webhookAddress,
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      routes: webhookRoutes({
        allocators,
        isClusterIP: clusterIPLookup((index, value) => services.byIndex(index, value)),
      }),
      logger,
      notReadyReason: () => (services.hasSynced() ? undefined : 'services cache not synced'),
    });
  }
  return { allocators, services, webhookServer, repair };
}
