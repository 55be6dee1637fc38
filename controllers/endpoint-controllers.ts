/**
 * Assembles the Endpoints, EndpointSlice and EndpointSlice-mirroring controllers over one shared
 * set of informers, for the controller manager and for tests that run them in-process.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createEndpointInformers, type EndpointInformers } from './endpoint-informers.ts';
import {
  createEndpointsController,
  ENDPOINTS_CONTROLLER_NAME,
  type EndpointsReconciler,
} from './endpoints/controller.ts';
import {
  createEndpointSliceController,
  ENDPOINTSLICE_CONTROLLER_NAME,
  type EndpointSliceReconciler,
} from './endpointslice/controller.ts';
import {
  createEndpointSliceMirroringController,
  type EndpointSliceMirroringReconciler,
  MIRRORING_CONTROLLER_NAME,
} from './endpointslice-mirroring/controller.ts';
import { EventRecorder } from './runtime/events.ts';
import type { Logger } from './runtime/logging.ts';
import type { ManagedController } from './runtime/manager.ts';

/** Settings of the endpoint controllers, as the controller manager's flags give them. */
export interface EndpointControllersConfig {
  /** `--max-endpoints-per-slice` (1..1000, default 100). */
  maxEndpointsPerSlice?: number;
  /** `--endpoint-updates-batch-period` in ms (default 0). */
  endpointUpdatesBatchPeriodMs?: number;
  /** `--concurrent-service-endpoint-syncs` (default 5), used by both Service controllers. */
  concurrentServiceEndpointSyncs?: number;
  /** `--mirroring-max-endpoints-per-subset` (1..1000, default 1000). */
  mirroringMaxEndpointsPerSubset?: number;
}

/** A controller with the extras tests and benchmarks use to know when a burst has gone through. */
export interface RunnableEndpointController extends ManagedController {
  /** Resolves when no key is waiting or being reconciled. */
  whenIdle(): Promise<void>;
}

/** The three controllers and the caches they read. */
export interface EndpointControllers {
  informers: EndpointInformers;
  controllers: RunnableEndpointController[];
  /** The reconcilers, for tests that run a sync directly and check it writes nothing. */
  reconcilers: {
    endpoints: EndpointsReconciler;
    endpointSlices: EndpointSliceReconciler;
    mirroring: EndpointSliceMirroringReconciler;
  };
}

/** Creates the shared informers and the three controllers (nothing is started). */
export function createEndpointControllers(
  kubeConfig: KubeConfig,
  logger: Logger,
  config: EndpointControllersConfig = {},
): EndpointControllers {
  const informers = createEndpointInformers(kubeConfig, logger);
  const recorder = (component: string) => new EventRecorder({ kubeConfig, component, logger });
  const concurrency = config.concurrentServiceEndpointSyncs;
  const batchMs = config.endpointUpdatesBatchPeriodMs;
  const endpoints = createEndpointsController({
    kubeConfig,
    informers,
    logger,
    events: recorder(ENDPOINTS_CONTROLLER_NAME),
    endpointUpdatesBatchPeriodMs: batchMs,
    concurrency,
  });
  const slices = createEndpointSliceController({
    kubeConfig,
    informers,
    logger,
    events: recorder(ENDPOINTSLICE_CONTROLLER_NAME),
    maxEndpointsPerSlice: config.maxEndpointsPerSlice,
    endpointUpdatesBatchPeriodMs: batchMs,
    concurrency,
  });
  const mirroring = createEndpointSliceMirroringController({
    kubeConfig,
    informers,
    logger,
    events: recorder(MIRRORING_CONTROLLER_NAME),
    maxEndpointsPerSubset: config.mirroringMaxEndpointsPerSubset,
  });
  return {
    informers,
    controllers: [endpoints.controller, slices.controller, mirroring.controller],
    reconcilers: {
      endpoints: endpoints.reconciler,
      endpointSlices: slices.reconciler,
      mirroring: mirroring.reconciler,
    },
  };
}
