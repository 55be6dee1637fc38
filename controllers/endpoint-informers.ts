/**
 * The informer caches the Endpoints, EndpointSlice and mirroring controllers share, with the
 * secondary indexes that let an event find the affected Services without scanning every Service
 * or every pod.
 */
import type {
  KubeConfig,
  V1EndpointSlice,
  V1Endpoints,
  V1Node,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import { LABEL_SERVICE_NAME } from '../api/labels.ts';
import { podMatchesService, serviceSelector } from './endpointslice/pods.ts';
import { Informer, type ManagedInformer, objectKey } from './runtime/informer.ts';
import type { Logger } from './runtime/logging.ts';

/** Services filed under `namespace/key=value` for each pair of their selector. */
export const SERVICE_SELECTOR_INDEX = 'selector-label';
/** Pods filed under `namespace/key=value` for each of their labels. */
export const POD_LABEL_INDEX = 'label';
/** Pods filed under `spec.nodeName` (unscheduled pods are left out). */
export const POD_NODE_INDEX = 'node';
/** EndpointSlices filed under `namespace/<kubernetes.io/service-name>`. */
export const SLICE_SERVICE_INDEX = 'service';

function labelIndexValue(namespace: string, key: string, value: string): string {
  return `${namespace}/${key}=${value}`;
}

/** Index values of a Service: one per selector pair; none for selector-less Services. */
export function serviceSelectorIndexValues(service: V1Service): string[] {
  const selector = serviceSelector(service);
  if (selector === undefined) return [];
  const namespace = service.metadata?.namespace ?? '';
  return Object.entries(selector).map(([key, value]) => labelIndexValue(namespace, key, value));
}

/** Index values of a pod: one per label. */
export function podLabelIndexValues(pod: V1Pod): string[] {
  const namespace = pod.metadata?.namespace ?? '';
  return Object.entries(pod.metadata?.labels ?? {}).map(([key, value]) =>
    labelIndexValue(namespace, key, value),
  );
}

/** Index values of an EndpointSlice: the key of the Service it belongs to, if labelled. */
export function sliceServiceIndexValues(slice: V1EndpointSlice): string[] {
  const service = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  if (service === undefined || service === '') return [];
  return [`${slice.metadata?.namespace ?? ''}/${service}`];
}

/**
 * The part of a pod the endpoint controllers read: all of its metadata but managedFields (which
 * kube-controller-manager's informers drop too), placement and DNS identity, the containers' names
 * and ports (named targetPorts, sidecars), and phase, IPs and conditions. The rest of a running
 * pod (volumes, env, probes, resources, tolerations, container statuses) is most of its size, and
 * keeping 100,000 of them made the first list of a large cluster spend most of its time in garbage
 * collection. Modifies and returns `pod`.
 */
export function podForEndpoints(pod: V1Pod): V1Pod {
  if (pod.metadata?.managedFields !== undefined) delete pod.metadata.managedFields;
  const spec = pod.spec;
  if (spec !== undefined) {
    const kept: V1Pod['spec'] = {
      containers: (spec.containers ?? []).map(({ name, ports }) =>
        ports === undefined ? { name } : { name, ports },
      ),
    };
    if (spec.initContainers !== undefined) {
      kept.initContainers = spec.initContainers.map(({ name, ports, restartPolicy }) => ({
        name,
        ...(ports !== undefined && { ports }),
        ...(restartPolicy !== undefined && { restartPolicy }),
      }));
    }
    if (spec.nodeName !== undefined) kept.nodeName = spec.nodeName;
    if (spec.hostname !== undefined) kept.hostname = spec.hostname;
    if (spec.subdomain !== undefined) kept.subdomain = spec.subdomain;
    pod.spec = kept;
  }
  const status = pod.status;
  if (status !== undefined) {
    const kept: V1Pod['status'] = {};
    if (status.phase !== undefined) kept.phase = status.phase;
    if (status.podIP !== undefined) kept.podIP = status.podIP;
    if (status.podIPs !== undefined) kept.podIPs = status.podIPs;
    if (status.conditions !== undefined) kept.conditions = status.conditions;
    pod.status = kept;
  }
  return pod;
}

/** What the lookups need of a Service cache: its indexes (an {@link Informer} or an `IndexedStore`). */
export type ServiceIndex = Pick<Informer<V1Service>, 'byIndex'>;
/** What the lookups need of a pod cache. */
export type PodIndex = Pick<Informer<V1Pod>, 'byIndex'>;

/** The shared caches of the endpoint controllers. */
export interface EndpointInformers {
  services: Informer<V1Service>;
  pods: Informer<V1Pod>;
  nodes: Informer<V1Node>;
  endpoints: Informer<V1Endpoints>;
  endpointSlices: Informer<V1EndpointSlice>;
}

/** Creates (without starting) the informers of every collection the endpoint controllers read. */
export function createEndpointInformers(kubeConfig: KubeConfig, logger: Logger): EndpointInformers {
  return {
    services: new Informer<V1Service>({
      kubeConfig,
      logger,
      path: '/api/v1/services',
      indexers: { [SERVICE_SELECTOR_INDEX]: serviceSelectorIndexValues },
    }),
    pods: new Informer<V1Pod>({
      kubeConfig,
      logger,
      path: '/api/v1/pods',
      transform: podForEndpoints,
      indexers: {
        [POD_LABEL_INDEX]: podLabelIndexValues,
        [POD_NODE_INDEX]: (pod) => (pod.spec?.nodeName ? [pod.spec.nodeName] : []),
      },
    }),
    nodes: new Informer<V1Node>({ kubeConfig, logger, path: '/api/v1/nodes' }),
    endpoints: new Informer<V1Endpoints>({ kubeConfig, logger, path: '/api/v1/endpoints' }),
    endpointSlices: new Informer<V1EndpointSlice>({
      kubeConfig,
      logger,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      indexers: { [SLICE_SERVICE_INDEX]: sliceServiceIndexValues },
    }),
  };
}

/** Every informer of the set, for registering with a Manager. */
export function allEndpointInformers(informers: EndpointInformers): ManagedInformer[] {
  return [informers.services, informers.pods, informers.nodes, informers.endpoints, informers.endpointSlices];
}

/**
 * The keys of the Services whose selector matches the pod. Only the Services filed under one of the
 * pod's labels are candidates, and each candidate's full selector is then checked, so the cost is
 * bounded by the Services sharing a label with the pod, not by all Services.
 */
export function serviceKeysSelectingPod(services: ServiceIndex, pod: V1Pod): Set<string> {
  const keys = new Set<string>();
  for (const value of podLabelIndexValues(pod)) {
    for (const service of services.byIndex(SERVICE_SELECTOR_INDEX, value)) {
      const key = objectKey(service);
      if (!keys.has(key) && podMatchesService(service, pod)) keys.add(key);
    }
  }
  return keys;
}

/**
 * The pods a Service selects, from the smallest bucket among its selector pairs; empty for
 * selector-less Services.
 */
export function podsSelectedByService(pods: PodIndex, service: V1Service): V1Pod[] {
  const values = serviceSelectorIndexValues(service);
  let smallest: V1Pod[] | undefined;
  for (const value of values) {
    const bucket = pods.byIndex(POD_LABEL_INDEX, value);
    if (smallest === undefined || bucket.length < smallest.length) smallest = bucket;
    if (bucket.length === 0) break;
  }
  return (smallest ?? []).filter((pod) => podMatchesService(service, pod));
}

/** Keys of the Services selecting any pod scheduled to `nodeName`. */
export function serviceKeysWithPodsOnNode(informers: EndpointInformers, nodeName: string): Set<string> {
  const keys = new Set<string>();
  for (const pod of informers.pods.byIndex(POD_NODE_INDEX, nodeName)) {
    for (const key of serviceKeysSelectingPod(informers.services, pod)) keys.add(key);
  }
  return keys;
}

function readyStatus(pod: V1Pod): string | undefined {
  return pod.status?.conditions?.find((condition) => condition.type === 'Ready')?.status;
}

/**
 * What of a pod, besides its labels, can change an Endpoints or EndpointSlice entry: addresses,
 * readiness, termination, phase, placement and DNS identity.
 */
function endpointRelevantState(pod: V1Pod): string {
  return JSON.stringify([
    pod.status?.podIP ?? '',
    (pod.status?.podIPs ?? []).map((entry) => entry.ip),
    readyStatus(pod) ?? '',
    pod.metadata?.deletionTimestamp !== undefined && pod.metadata?.deletionTimestamp !== null,
    pod.status?.phase ?? '',
    pod.spec?.nodeName ?? '',
    pod.spec?.hostname ?? '',
    pod.spec?.subdomain ?? '',
  ]);
}

function sameLabels(a: V1Pod, b: V1Pod): boolean {
  const left = a.metadata?.labels ?? {};
  const right = b.metadata?.labels ?? {};
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => right[key] === left[key]);
}

/**
 * The Services a pod update concerns (upstream `GetServicesToUpdateOnPodChange`): none for a
 * resync or an irrelevant change; when only labels changed, the Services that gained or lost the
 * pod; otherwise every Service selecting the old or the new pod.
 */
export function serviceKeysForPodUpdate(services: ServiceIndex, oldPod: V1Pod, newPod: V1Pod): Set<string> {
  if (oldPod.metadata?.resourceVersion === newPod.metadata?.resourceVersion) return new Set();
  const labelsChanged = !sameLabels(oldPod, newPod);
  const stateChanged = endpointRelevantState(oldPod) !== endpointRelevantState(newPod);
  if (!labelsChanged && !stateChanged) return new Set();
  const before = serviceKeysSelectingPod(services, oldPod);
  const after = serviceKeysSelectingPod(services, newPod);
  if (stateChanged) return new Set([...before, ...after]);
  const difference = new Set<string>();
  for (const key of before) if (!after.has(key)) difference.add(key);
  for (const key of after) if (!before.has(key)) difference.add(key);
  return difference;
}

/** The part of a controller that {@link queueServicesOnServiceAndPodEvents} queues keys into. */
export interface ServiceKeyQueue {
  enqueue(key: string): void;
  enqueueAfter(key: string, delayMs: number): void;
}

/**
 * Queues a Service's key on every change to it, and the keys of the Services selecting a pod on
 * every relevant pod change, as both endpoint controllers react. Pod-driven keys wait
 * `batchPeriodMs` when it is positive (`--endpoint-updates-batch-period`), so a rollout touching
 * many pods costs one sync per Service instead of one per pod. Returns the pod-driven enqueue so
 * a controller can queue Services for other events (node changes) under the same batching.
 */
export function queueServicesOnServiceAndPodEvents(
  informers: Pick<EndpointInformers, 'services' | 'pods'>,
  queue: ServiceKeyQueue,
  batchPeriodMs: number,
): (serviceKeys: Iterable<string>) => void {
  const enqueuePodServices = (keys: Iterable<string>) => {
    for (const key of keys) {
      if (batchPeriodMs > 0) queue.enqueueAfter(key, batchPeriodMs);
      else queue.enqueue(key);
    }
  };
  informers.services.addEventHandler({
    onAdd: (service) => queue.enqueue(objectKey(service)),
    onUpdate: (previous, service) => {
      if (previous.metadata?.resourceVersion !== service.metadata?.resourceVersion)
        queue.enqueue(objectKey(service));
    },
    onDelete: (service) => queue.enqueue(objectKey(service)),
  });
  informers.pods.addEventHandler({
    onAdd: (pod) => enqueuePodServices(serviceKeysSelectingPod(informers.services, pod)),
    onUpdate: (previous, pod) =>
      enqueuePodServices(serviceKeysForPodUpdate(informers.services, previous, pod)),
    onDelete: (pod) => enqueuePodServices(serviceKeysSelectingPod(informers.services, pod)),
  });
  return enqueuePodServices;
}
