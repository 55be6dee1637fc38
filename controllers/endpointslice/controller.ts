/**
 * The EndpointSlice controller's I/O shell: it reads a Service, its pods, their nodes and its
 * slices from the shared caches, asks {@link planEndpointSlices} for the difference and writes it.
 */
import type { KubeConfig, V1EndpointSlice, V1Node } from '@kubernetes/client-node';
import {
  LABEL_MANAGED_BY,
  LABEL_TOPOLOGY_ZONE,
  MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
} from '../../api/labels.ts';
import {
  type EndpointInformers,
  podsSelectedByService,
  queueServicesOnServiceAndPodEvents,
  SLICE_SERVICE_INDEX,
  serviceKeysWithPodsOnNode,
} from '../endpoint-informers.ts';
import { Controller, type ReconcileResult, type Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { objectKey } from '../runtime/informer.ts';
import { apiStatusCode, describeError, type KubeJsonClient, kubeJsonClient } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import { getOrCreateCounter, METRIC_PREFIX } from '../runtime/metrics.ts';
import { topologyAnnotationEnabled } from './hints.ts';
import { DEFAULT_MAX_ENDPOINTS_PER_SLICE, planEndpointSlices, validateMaxEndpointsPerSlice } from './plan.ts';
import { serviceSelector } from './pods.ts';
import { type ZoneCapacity, zoneCapacityInputs, zoneCapacityOf } from './topology-hints.ts';
import { TriggerTimeTracker } from './trigger-time.ts';
import { EndpointSliceWriteTracker, serviceKeyOfSlice } from './write-tracker.ts';

/** Name of the controller in logs and metrics, and the component of its Events (as upstream). */
export const ENDPOINTSLICE_CONTROLLER_NAME = 'endpoint-slice-controller';

/**
 * How long to wait before looking again when the cache has not yet caught up with our own writes;
 * short, because that usually resolves with the next watch event.
 */
const CACHE_RETRY_MS = 100;

/**
 * Retry delay while a pod's Node is unknown, as upstream retries such a Service. The Node's arrival
 * queues the Service as well, so this is only the fallback when no Node event comes.
 */
const MISSING_NODE_RETRY_MS = 1000;

/** Delay of syncs caused by slice events, so a burst of changes to one Service's slices is handled once. */
const SLICE_EVENT_DELAY_MS = 1000;

/** The collection path of EndpointSlices in a namespace. */
const ENDPOINTSLICES_PATH = (namespace: string) =>
  `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;

const sliceWrites = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}endpointslice_writes_total`,
    help: 'EndpointSlice writes sent to the API server, by controller and operation (create, update, delete).',
    labelNames: ['controller', 'operation'],
  });

/** The slice writes of one reconcile, in the order they are sent. */
export interface SliceWrites {
  create: V1EndpointSlice[];
  update: V1EndpointSlice[];
  delete: V1EndpointSlice[];
}

/** Callbacks of {@link applySliceWrites} so callers can track their own writes. */
export interface SliceWriteHooks {
  /** A create or update the API server accepted, as it returned it. */
  written?(slice: V1EndpointSlice): void;
  /** Called just before a delete is sent. */
  deleting?(slice: V1EndpointSlice): void;
}

function isNamespaceTerminating(error: unknown): boolean {
  return apiStatusCode(error) === 403 && /being terminated|NamespaceTerminating/.test(describeError(error));
}

/**
 * Sends creates, then updates, then deletes. Every write is attempted even when an earlier one
 * failed; the failures are returned (a delete of a slice already gone is not a failure, nor is a
 * create refused because the namespace is terminating).
 */
export async function applySliceWrites(
  api: KubeJsonClient,
  writes: SliceWrites,
  controllerName: string,
  hooks: SliceWriteHooks = {},
): Promise<Error[]> {
  const errors: Error[] = [];
  const counter = sliceWrites();
  const fail = (operation: string, slice: V1EndpointSlice, error: unknown) => {
    const name = slice.metadata?.name ?? `${slice.metadata?.generateName ?? ''}*`;
    errors.push(
      new Error(`${operation} EndpointSlice ${slice.metadata?.namespace}/${name}: ${describeError(error)}`),
    );
  };
  const namespaceOf = (slice: V1EndpointSlice) => slice.metadata?.namespace ?? '';
  await Promise.all(
    writes.create.map(async (slice) => {
      try {
        counter.labels({ controller: controllerName, operation: 'create' }).inc();
        hooks.written?.(await api.create(ENDPOINTSLICES_PATH(namespaceOf(slice)), slice));
      } catch (error) {
        if (!isNamespaceTerminating(error)) fail('create', slice, error);
      }
    }),
  );
  await Promise.all(
    writes.update.map(async (slice) => {
      try {
        counter.labels({ controller: controllerName, operation: 'update' }).inc();
        hooks.written?.(
          await api.replace(ENDPOINTSLICES_PATH(namespaceOf(slice)), slice.metadata?.name ?? '', slice),
        );
      } catch (error) {
        fail('update', slice, error);
      }
    }),
  );
  await Promise.all(
    writes.delete.map(async (slice) => {
      try {
        hooks.deleting?.(slice);
        counter.labels({ controller: controllerName, operation: 'delete' }).inc();
        await api.delete(ENDPOINTSLICES_PATH(namespaceOf(slice)), slice.metadata?.name ?? '');
      } catch (error) {
        if (apiStatusCode(error) !== 404) fail('delete', slice, error);
      }
    }),
  );
  return errors;
}

/** Options of {@link EndpointSliceReconciler} and {@link createEndpointSliceController}. */
export interface EndpointSliceControllerOptions {
  kubeConfig: KubeConfig;
  informers: EndpointInformers;
  logger: Logger;
  /** Records Warning Events on Services whose slices could not be written. */
  events?: EventRecorder;
  /** `--max-endpoints-per-slice`, 1..1000, default 100. */
  maxEndpointsPerSlice?: number;
  /** `--endpoint-updates-batch-period` in ms: pod changes wait this long so bursts sync once. Default 0. */
  endpointUpdatesBatchPeriodMs?: number;
  /** Services synced at once (`--concurrent-service-endpoint-syncs`, default 5). */
  concurrency?: number;
}

/**
 * Keeps the EndpointSlices of every Service with a selector equal to its pods. Level-triggered:
 * reads only the caches, writes only the difference, and a second run writes nothing.
 */
export class EndpointSliceReconciler implements Reconciler {
  readonly #informers: EndpointInformers;
  readonly #api: KubeJsonClient;
  readonly #events: EventRecorder | undefined;
  readonly #maxEndpointsPerSlice: number;
  readonly #triggerTimes = new TriggerTimeTracker();
  /** Services whose slices carry `topology-mode: Auto` hints (upstream's topology cache knows it too). */
  readonly #topologyHintsPopulated = new Set<string>();
  /** The cluster's CPU by zone, computed when an annotated Service first needs it after a node change. */
  #zoneCapacity: ZoneCapacity | undefined;
  /** Our own recent writes, so a lagging cache neither triggers syncs nor causes duplicate creates. */
  readonly tracker = new EndpointSliceWriteTracker();

  /** @param options caches, credentials, Event recorder and slice size */
  constructor(options: EndpointSliceControllerOptions) {
    this.#informers = options.informers;
    this.#api = kubeJsonClient(options.kubeConfig);
    this.#events = options.events;
    this.#maxEndpointsPerSlice = options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE;
    validateMaxEndpointsPerSlice(this.#maxEndpointsPerSlice);
  }

  /** Syncs the slices of the Service `namespace/name`. */
  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const service = this.#informers.services.get(key);
    if (service === undefined) {
      // The slices carry an owner reference to the Service; the garbage collector removes them.
      this.tracker.forgetService(key);
      this.#triggerTimes.forget(key);
      this.#topologyHintsPopulated.delete(key);
      return undefined;
    }
    if (service.spec?.type === 'ExternalName' || serviceSelector(service) === undefined) return undefined;
    const slices = this.#informers.endpointSlices.byIndex(SLICE_SERVICE_INDEX, key);
    if (this.tracker.isStale(key, slices)) return { requeueAfter: CACHE_RETRY_MS };
    const pods = podsSelectedByService(this.#informers.pods, service);
    const nodes = new Map<string, V1Node>();
    for (const pod of pods) {
      const nodeName = pod.spec?.nodeName;
      if (!nodeName || nodes.has(nodeName)) continue;
      const node = this.#informers.nodes.get(nodeName);
      if (node !== undefined) nodes.set(nodeName, node);
    }
    const plan = planEndpointSlices(service, pods, nodes, slices, {
      maxEndpointsPerSlice: this.#maxEndpointsPerSlice,
      triggerTime: this.#triggerTimes.compute(key, service, pods),
      ...(topologyAnnotationEnabled(service) ? { zoneCapacity: this.#currentZoneCapacity() } : {}),
      topologyHintsPopulated: this.#topologyHintsPopulated.has(key),
    });
    if (plan.topologyHintsPopulated) this.#topologyHintsPopulated.add(key);
    else this.#topologyHintsPopulated.delete(key);
    for (const event of plan.events)
      void this.#events?.event(service, event.type, event.reason, event.message);
    const errors = await applySliceWrites(this.#api, plan, ENDPOINTSLICE_CONTROLLER_NAME, {
      written: (slice) => this.tracker.recordWrite(slice),
      deleting: (slice) => this.tracker.expectDeletion(slice),
    });
    if (errors.length > 0) {
      const message = `Error updating Endpoint Slices for Service ${key}: ${errors.map((e) => e.message).join('; ')}`;
      void this.#events?.event(service, 'Warning', 'FailedToUpdateEndpointSlices', message);
      throw new AggregateError(errors, message);
    }
    if (plan.podsOnMissingNodes.length > 0) return { requeueAfter: MISSING_NODE_RETRY_MS };
    return undefined;
  }

  /** Drops the cached CPU by zone after a node change that can alter it. */
  forgetZoneCapacity(): void {
    this.#zoneCapacity = undefined;
  }

  #currentZoneCapacity(): ZoneCapacity {
    this.#zoneCapacity ??= zoneCapacityOf(this.#informers.nodes.list());
    return this.#zoneCapacity;
  }
}

function zoneOf(node: V1Node): string | undefined {
  return node.metadata?.labels?.[LABEL_TOPOLOGY_ZONE];
}

/**
 * Builds the EndpointSlice controller and connects it to the caches: Service changes, pod changes
 * (the Services selecting the old and the new pod), node arrivals and zone changes (the Services
 * with pods on the node) and changes to our slices made by someone else.
 */
export function createEndpointSliceController(options: EndpointSliceControllerOptions): {
  controller: Controller;
  reconciler: EndpointSliceReconciler;
} {
  const reconciler = new EndpointSliceReconciler(options);
  const controller = new Controller({
    name: ENDPOINTSLICE_CONTROLLER_NAME,
    reconciler,
    logger: options.logger,
    concurrency: options.concurrency ?? 5,
    baseBackoffMs: 1000,
    maxBackoffMs: 1_000_000,
  });
  const { informers } = options;
  const batchMs = options.endpointUpdatesBatchPeriodMs ?? 0;
  const enqueuePodServices = queueServicesOnServiceAndPodEvents(informers, controller, batchMs);
  // A node change can move every zone's CPU share, so all annotated Services are synced again
  // (upstream narrows this to the Services it finds overloaded; a sync that changes nothing writes
  // nothing). One scan serves a burst of node events, such as the informer's initial list.
  let topologyScanPending = false;
  const zoneCapacityChanged = () => {
    reconciler.forgetZoneCapacity();
    if (topologyScanPending) return;
    topologyScanPending = true;
    setImmediate(() => {
      topologyScanPending = false;
      for (const service of informers.services.list().filter(topologyAnnotationEnabled))
        controller.enqueue(objectKey(service));
    }).unref();
  };
  informers.nodes.addEventHandler({
    onAdd: (node) => {
      zoneCapacityChanged();
      enqueuePodServices(serviceKeysWithPodsOnNode(informers, node.metadata?.name ?? ''));
    },
    onUpdate: (previous, node) => {
      if (zoneCapacityInputs(previous) !== zoneCapacityInputs(node)) zoneCapacityChanged();
      if (zoneOf(previous) !== zoneOf(node))
        enqueuePodServices(serviceKeysWithPodsOnNode(informers, node.metadata?.name ?? ''));
    },
    onDelete: () => zoneCapacityChanged(),
  });
  const sliceDelayMs = Math.max(SLICE_EVENT_DELAY_MS, batchMs);
  const ours = (slice: V1EndpointSlice) =>
    slice.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
  const enqueueSliceService = (slice: V1EndpointSlice) => {
    const key = serviceKeyOfSlice(slice);
    if (key !== undefined) controller.enqueueAfter(key, sliceDelayMs);
  };
  informers.endpointSlices.addEventHandler({
    onAdd: (slice) => {
      if (ours(slice) && reconciler.tracker.shouldSync(slice)) enqueueSliceService(slice);
    },
    onUpdate: (previous, slice) => {
      if (previous.metadata?.resourceVersion === slice.metadata?.resourceVersion) return;
      // A slice taken away from us (managed-by changed) must be replaced.
      if ((ours(previous) && !ours(slice)) || (ours(slice) && reconciler.tracker.shouldSync(slice)))
        enqueueSliceService(slice);
    },
    onDelete: (slice) => {
      if (ours(slice) && reconciler.tracker.handleDeletion(slice)) enqueueSliceService(slice);
    },
  });
  return { controller, reconciler };
}
