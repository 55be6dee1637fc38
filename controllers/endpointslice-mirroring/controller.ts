/**
 * The EndpointSlice mirroring controller's I/O shell: for a selector-less Service whose Endpoints a
 * user wrote, it keeps EndpointSlices mirroring those Endpoints, so consumers that read only slices
 * (the agent, kube-proxy) see them.
 */
import type { KubeConfig, V1EndpointSlice } from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER } from '../../api/labels.ts';
import { type EndpointInformers, SLICE_SERVICE_INDEX } from '../endpoint-informers.ts';
import { applySliceWrites } from '../endpointslice/controller.ts';
import { EndpointSliceWriteTracker, serviceKeyOfSlice } from '../endpointslice/write-tracker.ts';
import { Controller, type ReconcileResult, type Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { objectKey } from '../runtime/informer.ts';
import { type KubeJsonClient, kubeJsonClient } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import {
  DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET,
  planMirroredSlices,
  validateMaxEndpointsPerSubset,
} from './plan.ts';

/** Name of the controller in logs and metrics, and the component of its Events (as upstream). */
export const MIRRORING_CONTROLLER_NAME = 'endpoint-slice-mirroring-controller';

/** Delay before looking again when the cache has not caught up with our own writes. */
const STALE_CACHE_RETRY_MS = 100;

/** Options of {@link EndpointSliceMirroringReconciler} and {@link createEndpointSliceMirroringController}. */
export interface EndpointSliceMirroringControllerOptions {
  kubeConfig: KubeConfig;
  informers: EndpointInformers;
  logger: Logger;
  /** Records Warnings (addresses not mirrored, failed writes) on the Endpoints. */
  events?: EventRecorder;
  /** `--mirroring-max-endpoints-per-subset`, 1..1000, default 1000. */
  maxEndpointsPerSubset?: number;
  /** Endpoints synced at once (`--mirroring-concurrent-service-endpoint-syncs`, default 5). */
  concurrency?: number;
}

/** Mirrors one Endpoints object (key `namespace/name`, shared with its Service) into slices. */
export class EndpointSliceMirroringReconciler implements Reconciler {
  readonly #informers: EndpointInformers;
  readonly #api: KubeJsonClient;
  readonly #events: EventRecorder | undefined;
  readonly #maxEndpointsPerSubset: number;
  /** Our own recent writes, so our slice events do not trigger syncs and a lagging cache is noticed. */
  readonly tracker = new EndpointSliceWriteTracker();

  /** @param options caches, credentials, Event recorder and mirroring cap */
  constructor(options: EndpointSliceMirroringControllerOptions) {
    this.#informers = options.informers;
    this.#api = kubeJsonClient(options.kubeConfig);
    this.#events = options.events;
    this.#maxEndpointsPerSubset = options.maxEndpointsPerSubset ?? DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET;
    validateMaxEndpointsPerSubset(this.#maxEndpointsPerSubset);
  }

  /** Syncs the mirrored slices of `namespace/name`. */
  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const service = this.#informers.services.get(key);
    const endpoints = this.#informers.endpoints.get(key);
    const slices = this.#informers.endpointSlices.byIndex(SLICE_SERVICE_INDEX, key);
    if (this.tracker.isStale(key, slices)) return { requeueAfter: STALE_CACHE_RETRY_MS };
    const plan = planMirroredSlices(service, endpoints, slices, {
      maxEndpointsPerSubset: this.#maxEndpointsPerSubset,
    });
    if (endpoints !== undefined) {
      for (const event of plan.events)
        void this.#events?.event(endpoints, event.type, event.reason, event.message);
    }
    const errors = await applySliceWrites(this.#api, plan, MIRRORING_CONTROLLER_NAME, {
      written: (slice) => this.tracker.recordWrite(slice),
      deleting: (slice) => this.tracker.expectDeletion(slice),
    });
    if (errors.length > 0) {
      const message = `Error mirroring Endpoints ${key} to EndpointSlices: ${errors.map((e) => e.message).join('; ')}`;
      if (endpoints !== undefined)
        void this.#events?.event(endpoints, 'Warning', 'FailedToUpdateEndpointSlices', message);
      throw new AggregateError(errors, message);
    }
    if (endpoints === undefined && service === undefined) this.tracker.forgetService(key);
    return undefined;
  }
}

/**
 * Builds the mirroring controller and connects it to the caches: Endpoints and Service changes
 * queue their key; changes to mirrored slices made by someone else queue the key they belong to.
 */
export function createEndpointSliceMirroringController(options: EndpointSliceMirroringControllerOptions): {
  controller: Controller;
  reconciler: EndpointSliceMirroringReconciler;
} {
  const reconciler = new EndpointSliceMirroringReconciler(options);
  const controller = new Controller({
    name: MIRRORING_CONTROLLER_NAME,
    reconciler,
    logger: options.logger,
    concurrency: options.concurrency ?? 5,
    baseBackoffMs: 1000,
    maxBackoffMs: 100_000,
  });
  const { informers } = options;
  const byKey = {
    onAdd: (object: { metadata?: { namespace?: string; name?: string } }) =>
      controller.enqueue(objectKey(object)),
    onUpdate: (
      previous: { metadata?: { resourceVersion?: string } },
      object: { metadata?: { namespace?: string; name?: string; resourceVersion?: string } },
    ) => {
      if (previous.metadata?.resourceVersion !== object.metadata?.resourceVersion)
        controller.enqueue(objectKey(object));
    },
    onDelete: (object: { metadata?: { namespace?: string; name?: string } }) =>
      controller.enqueue(objectKey(object)),
  };
  informers.endpoints.addEventHandler(byKey);
  informers.services.addEventHandler(byKey);
  const ours = (slice: V1EndpointSlice) =>
    slice.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER;
  const enqueueSliceOwner = (slice: V1EndpointSlice) => {
    const key = serviceKeyOfSlice(slice);
    if (key !== undefined) controller.enqueue(key);
  };
  informers.endpointSlices.addEventHandler({
    onAdd: (slice) => {
      if (ours(slice) && reconciler.tracker.shouldSync(slice)) enqueueSliceOwner(slice);
    },
    onUpdate: (previous, slice) => {
      if (previous.metadata?.resourceVersion === slice.metadata?.resourceVersion) return;
      if ((ours(previous) && !ours(slice)) || (ours(slice) && reconciler.tracker.shouldSync(slice)))
        enqueueSliceOwner(slice);
    },
    onDelete: (slice) => {
      if (ours(slice) && reconciler.tracker.handleDeletion(slice)) enqueueSliceOwner(slice);
    },
  });
  return { controller, reconciler };
}
