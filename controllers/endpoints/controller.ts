/**
 * The Endpoints controller's I/O shell: reads a Service, its pods and its Endpoints from the shared
 * caches, asks {@link planEndpoints} what to write and writes it.
 */
import type { KubeConfig, V1Endpoints } from '@kubernetes/client-node';
import { ANNOTATION_LEADER_ELECTION } from '../../api/labels.ts';
import {
  type EndpointInformers,
  podsSelectedByService,
  queueServicesOnServiceAndPodEvents,
} from '../endpoint-informers.ts';
import { TriggerTimeTracker } from '../endpointslice/trigger-time.ts';
import { Controller, type ReconcileResult, type Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { objectKey, splitObjectKey } from '../runtime/informer.ts';
import { apiStatusCode, describeError, type KubeJsonClient, kubeJsonClient } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { ManagedController } from '../runtime/manager.ts';
import { getOrCreateCounter, METRIC_PREFIX } from '../runtime/metrics.ts';
import { planEndpoints } from './plan.ts';

/** Name of the controller in logs and metrics, and the component of its Events (as upstream). */
export const ENDPOINTS_CONTROLLER_NAME = 'endpoint-controller';

/** The collection path of Endpoints in a namespace. */
const ENDPOINTS_PATH = (namespace: string) => `/api/v1/namespaces/${namespace}/endpoints`;

/** Delay before looking again when the cache still shows an Endpoints older than our last write. */
const STALE_CACHE_RETRY_MS = 100;

const endpointsWrites = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}endpoints_writes_total`,
    help: 'Endpoints writes sent to the API server, by operation (create, update, delete).',
    labelNames: ['operation'],
  });

function resourceVersionNumber(object: V1Endpoints | undefined): bigint | undefined {
  const version = object?.metadata?.resourceVersion;
  return version !== undefined && /^\d+$/.test(version) ? BigInt(version) : undefined;
}

/** Options of {@link EndpointsReconciler} and {@link createEndpointsController}. */
export interface EndpointsControllerOptions {
  kubeConfig: KubeConfig;
  informers: EndpointInformers;
  logger: Logger;
  /** Records Warning Events on Services whose Endpoints could not be written. */
  events?: EventRecorder;
  /** `--endpoint-updates-batch-period` in ms: pod changes wait this long so bursts sync once. Default 0. */
  endpointUpdatesBatchPeriodMs?: number;
  /** Services synced at once (`--concurrent-endpoint-syncs`, default 5). */
  concurrency?: number;
}

/**
 * Keeps the core/v1 Endpoints of every Service with a selector equal to its pods (capped at 1000
 * addresses), and deletes the Endpoints of Services that are gone.
 */
export class EndpointsReconciler implements Reconciler {
  readonly #informers: EndpointInformers;
  readonly #api: KubeJsonClient;
  readonly #events: EventRecorder | undefined;
  readonly #triggerTimes = new TriggerTimeTracker();
  /** resourceVersion of our last write per key, to recognise a cache that has not caught up. */
  readonly #written = new Map<string, bigint>();

  /** @param options caches, credentials and Event recorder */
  constructor(options: EndpointsControllerOptions) {
    this.#informers = options.informers;
    this.#api = kubeJsonClient(options.kubeConfig);
    this.#events = options.events;
  }

  /** Syncs the Endpoints named like the Service `namespace/name`. */
  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const service = this.#informers.services.get(key);
    const existing = this.#informers.endpoints.get(key);
    const written = this.#written.get(key);
    const cached = resourceVersionNumber(existing);
    if (written !== undefined && existing !== undefined && cached !== undefined && cached < written) {
      return { requeueAfter: STALE_CACHE_RETRY_MS };
    }
    const pods = service === undefined ? [] : podsSelectedByService(this.#informers.pods, service);
    const triggerTime = service === undefined ? undefined : this.#triggerTimes.compute(key, service, pods);
    const plan = planEndpoints(service, pods, existing, { triggerTime });
    const { namespace, name } = splitObjectKey(key);
    const counter = endpointsWrites();
    try {
      if (plan.action === 'delete') {
        this.#triggerTimes.forget(key);
        this.#written.delete(key);
        counter.labels({ operation: 'delete' }).inc();
        await this.#api.delete(ENDPOINTS_PATH(namespace), name);
      } else if (plan.action === 'create' && plan.object !== undefined) {
        counter.labels({ operation: 'create' }).inc();
        this.#remember(key, await this.#api.create(ENDPOINTS_PATH(namespace), plan.object));
      } else if (plan.action === 'update' && plan.object !== undefined) {
        counter.labels({ operation: 'update' }).inc();
        this.#remember(key, await this.#api.replace(ENDPOINTS_PATH(namespace), name, plan.object));
      }
    } catch (error) {
      const status = apiStatusCode(error);
      if (plan.action === 'delete' && status === 404) return undefined;
      if (plan.action === 'create' && status === 403 && /being terminated/.test(describeError(error)))
        return undefined;
      if (service !== undefined && plan.action !== 'delete') {
        const reason = plan.action === 'create' ? 'FailedToCreateEndpoint' : 'FailedToUpdateEndpoint';
        void this.#events?.event(
          service,
          'Warning',
          reason,
          `Failed to ${plan.action} endpoint ${key}: ${describeError(error)}`,
        );
      }
      throw error;
    }
    if (service === undefined) this.#triggerTimes.forget(key);
    return undefined;
  }

  #remember(key: string, object: V1Endpoints): void {
    const version = resourceVersionNumber(object);
    if (version !== undefined) this.#written.set(key, version);
  }
}

/**
 * Builds the Endpoints controller and connects it to the caches: Service changes, pod changes (the
 * Services selecting the old and the new pod) and deleted Endpoints (recreated if their Service
 * still wants them). When it starts it also queues every existing Endpoints, so those whose Service
 * went away while no leader ran are deleted.
 */
export function createEndpointsController(options: EndpointsControllerOptions): {
  controller: ManagedController & Pick<Controller, 'enqueue' | 'whenIdle'>;
  reconciler: EndpointsReconciler;
} {
  const reconciler = new EndpointsReconciler(options);
  const controller = new Controller({
    name: ENDPOINTS_CONTROLLER_NAME,
    reconciler,
    logger: options.logger,
    concurrency: options.concurrency ?? 5,
  });
  const { informers } = options;
  const batchMs = options.endpointUpdatesBatchPeriodMs ?? 0;
  queueServicesOnServiceAndPodEvents(informers, controller, batchMs);
  informers.endpoints.addEventHandler({
    onDelete: (endpoints) => controller.enqueue(objectKey(endpoints)),
  });
  return {
    controller: {
      name: controller.name,
      enqueue: (key) => controller.enqueue(key),
      whenIdle: () => controller.whenIdle(),
      run: () => {
        for (const endpoints of informers.endpoints.list()) {
          if (endpoints.metadata?.annotations?.[ANNOTATION_LEADER_ELECTION] === undefined)
            controller.enqueue(objectKey(endpoints));
        }
        controller.run();
      },
      stop: (timeoutMs) => controller.stop(timeoutMs),
    },
    reconciler,
  };
}
