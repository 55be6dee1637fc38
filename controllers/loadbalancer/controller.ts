/**
 * The LoadBalancer controller: gives each LoadBalancer Service Portico owns an address from a
 * LoadBalancerIPPool and publishes it in `status.loadBalancer.ingress`, releases it when the
 * Service goes away or stops being Portico's, and keeps each pool's status and metrics current.
 *
 * Two keyed controllers share one {@link LoadBalancerIPAllocator}: one reconciles Services
 * (`namespace/name`), the other writes pool status (`name`). The allocator is rebuilt from the
 * Services' status before either runs, so a restart never hands out an address twice.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  PatchStrategy,
  type V1Namespace,
  type V1Service,
} from '@kubernetes/client-node';
import { LoadBalancerIPAllocator } from '../../allocators/lb-pool/allocator.ts';
import {
  LOAD_BALANCER_IP_POOL_PLURAL,
  LOAD_BALANCER_IP_POOL_VERSION,
  type LoadBalancerIPPool,
  PORTICO_GROUP,
} from '../../api/loadbalancerippool.ts';
import { Controller } from '../runtime/controller.ts';
import type { EventType } from '../runtime/events.ts';
import { Informer, type ManagedInformer, objectKey, splitObjectKey } from '../runtime/informer.ts';
import {
  apiStatusCode,
  createConnectionReuse,
  getJson,
  type RequestOptionsFactory,
} from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { ManagedController } from '../runtime/manager.ts';
import { getOrCreateGauge, METRIC_PREFIX } from '../runtime/metrics.ts';
import {
  desiredIngress,
  finalizersWith,
  handlesService,
  hasCleanupFinalizer,
  ingressIPsOf,
  ingressMatches,
  loadBalancerRequestOf,
  poolStatusMatches,
  poolStatusOf,
  serviceConditionsFor,
  storedConditions,
} from './plan.ts';

/** Controller name: metrics label, log field and Event source. */
export const LOAD_BALANCER_CONTROLLER_NAME = 'loadbalancer';

/** Where Events go; {@link EventRecorder} fits. */
export interface LoadBalancerEventSink {
  /** Records an Event on `obj`; never rejects. */
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void>;
}

/** Options of {@link LoadBalancerController}. */
export interface LoadBalancerControllerOptions {
  /** Credentials for reads and writes. */
  readonly kubeConfig: KubeConfig;
  /** Process logger; the controller logs through a child. */
  readonly logger: Logger;
  /** Portico's `spec.loadBalancerClass` (`--load-balancer-class`); unset classes are handled too. */
  readonly loadBalancerClass: string;
  /** Events about Services. */
  readonly events: LoadBalancerEventSink;
  /** A Services informer shared with other controllers; one is created when absent. */
  readonly services?: Informer<V1Service>;
  /** Services reconciled at once (default 16). */
  readonly concurrency?: number;
}

const poolCapacityGauge = () =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}loadbalancer_pool_capacity`,
    help: 'Addresses a LoadBalancerIPPool can hand out (0 while it is unusable; saturates at 2^53-1).',
    labelNames: ['pool'],
  });

const poolAllocatedGauge = () =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}loadbalancer_pool_allocated`,
    help: 'Addresses of a LoadBalancerIPPool assigned to Services.',
    labelNames: ['pool'],
  });

/**
 * Lists pools, answering an empty list while the CRD is not installed so the manager (which runs
 * controllers only once every informer has synced) does not hold every other controller back.
 * The watch then fails and the informer relists with backoff until the CRD appears.
 */
function poolLister(kubeConfig: KubeConfig, path: string) {
  return async (): Promise<KubernetesListObject<LoadBalancerIPPool>> => {
    try {
      return (await getJson(kubeConfig, path)) as KubernetesListObject<LoadBalancerIPPool>;
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error;
      return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: [] };
    }
  };
}

/**
 * Owns LoadBalancer addresses for the Services of Portico's class. A manager controller: add
 * {@link informers} to the manager, then the controller itself.
 */
export class LoadBalancerController implements ManagedController {
  /** Controller name for the manager's logs. */
  readonly name = LOAD_BALANCER_CONTROLLER_NAME;
  /** The in-memory allocation state, rebuilt at {@link run}. */
  readonly allocator = new LoadBalancerIPAllocator();
  /** The Services cache (shared or own). */
  readonly services: Informer<V1Service>;
  /** The namespaces cache, for pools' namespaceSelector. */
  readonly namespaces: Informer<V1Namespace>;
  /** The pools cache. */
  readonly pools: Informer<LoadBalancerIPPool>;
  /** Informers this controller created and the manager must start (a shared one is not listed). */
  readonly informers: ManagedInformer[];
  readonly #options: LoadBalancerControllerOptions;
  readonly #logger: Logger;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  /** Options of every merge patch; all writes share one connection pool. */
  readonly #mergePatch: ReturnType<RequestOptionsFactory>;
  readonly #serviceQueue: Controller;
  readonly #poolQueue: Controller;
  /** Services that wait for an address; any release or pool change retries them. */
  readonly #pending = new Set<string>();
  /** Orphan warnings already given, `service=ip`, so a resync does not repeat them. */
  readonly #warnedOrphans = new Set<string>();
  #rebuilt = false;

  /** @param options credentials, class, events, optional shared Services informer */
  constructor(options: LoadBalancerControllerOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ controller: LOAD_BALANCER_CONTROLLER_NAME });
    const { kubeConfig, logger } = options;
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.#mergePatch = createConnectionReuse()(PatchStrategy.MergePatch);
    const own: ManagedInformer[] = [];
    if (options.services !== undefined) {
      this.services = options.services;
    } else {
      this.services = new Informer<V1Service>({ kubeConfig, logger, path: '/api/v1/services' });
      own.push(this.services);
    }
    this.namespaces = new Informer<V1Namespace>({ kubeConfig, logger, path: '/api/v1/namespaces' });
    const poolPath = `/apis/${PORTICO_GROUP}/${LOAD_BALANCER_IP_POOL_VERSION}/${LOAD_BALANCER_IP_POOL_PLURAL}`;
    this.pools = new Informer<LoadBalancerIPPool>({
      kubeConfig,
      logger,
      path: poolPath,
      name: LOAD_BALANCER_IP_POOL_PLURAL,
      list: poolLister(kubeConfig, poolPath),
    });
    own.push(this.namespaces, this.pools);
    this.informers = own;
    this.#serviceQueue = new Controller({
      name: LOAD_BALANCER_CONTROLLER_NAME,
      logger,
      concurrency: options.concurrency ?? 16,
      reconciler: { reconcile: (key) => this.reconcileService(key) },
    });
    this.#poolQueue = new Controller({
      name: `${LOAD_BALANCER_CONTROLLER_NAME}-pool-status`,
      logger,
      reconciler: { reconcile: (key) => this.reconcilePoolStatus(key) },
    });
    this.services.addEventHandler({
      onAdd: (service) => this.#enqueueService(service),
      onUpdate: (_old, service) => this.#enqueueService(service),
      onDelete: (service) => this.#serviceQueue.enqueue(objectKey(service)),
    });
    this.namespaces.addEventHandler({
      onUpdate: (old, namespace) => {
        if (JSON.stringify(old.metadata?.labels ?? {}) === JSON.stringify(namespace.metadata?.labels ?? {}))
          return;
        for (const service of this.services.listInNamespace(namespace.metadata?.name ?? '')) {
          this.#enqueueService(service);
        }
      },
    });
    const poolsChanged = () => this.#onPoolsChanged();
    this.pools.addEventHandler({
      onAdd: poolsChanged,
      // Our own status writes come back as updates; only a spec change can move addresses.
      onUpdate: (old, pool) => {
        if (JSON.stringify(old.spec) !== JSON.stringify(pool.spec)) poolsChanged();
      },
      onDelete: poolsChanged,
    });
  }

  /**
   * Rebuilds the allocator from the Services' status (oldest Service first, so it keeps a
   * contested address), then starts reconciling. The manager calls it once the caches synced.
   */
  run(): void {
    this.allocator.setPools(this.pools.list());
    const owned = this.services
      .list()
      .filter(
        (service) => hasCleanupFinalizer(service) || handlesService(service, this.#options.loadBalancerClass),
      )
      .sort((a, b) =>
        String(a.metadata?.creationTimestamp ?? '').localeCompare(
          String(b.metadata?.creationTimestamp ?? ''),
        ),
      );
    for (const service of owned) {
      const ips = ingressIPsOf(service);
      if (ips.length === 0) continue;
      const result = this.allocator.restore(this.#requestOf(service), ips);
      if (!result.ok) {
        this.#logger.warn('address in status not restored; the Service will get another', {
          service: objectKey(service),
          reason: result.reason,
          message: result.message,
        });
      }
    }
    this.#rebuilt = true;
    this.#logger.info('allocation state rebuilt from Services', {
      services: owned.length,
      pools: this.pools.list().length,
    });
    for (const service of this.services.list()) this.#enqueueService(service);
    for (const pool of this.pools.list()) this.#poolQueue.enqueue(objectKey(pool));
    this.#serviceQueue.run();
    this.#poolQueue.run();
  }

  /** Stops both queues, waiting up to `timeoutMs` for reconciles in flight. */
  async stop(timeoutMs?: number): Promise<boolean> {
    const [services, pools] = await Promise.all([
      this.#serviceQueue.stop(timeoutMs),
      this.#poolQueue.stop(timeoutMs),
    ]);
    return services && pools;
  }

  /** Resolves when neither queue has work waiting or in flight. */
  async whenIdle(): Promise<void> {
    do {
      await this.#serviceQueue.whenIdle();
      await this.#poolQueue.whenIdle();
    } while (this.#serviceQueue.queueLength > 0 || this.#poolQueue.queueLength > 0);
  }

  /**
   * Brings one Service in line: owned and alive → finalizer, address, status; otherwise, if
   * Portico managed it → release, clear status, drop the finalizer. Never writes to a Service
   * that neither is Portico's nor carries its finalizer.
   */
  async reconcileService(key: string): Promise<undefined> {
    const service = this.services.get(key);
    if (service === undefined) {
      this.#release(key);
      return undefined;
    }
    const owned = handlesService(service, this.#options.loadBalancerClass);
    const deleting =
      service.metadata?.deletionTimestamp !== undefined && service.metadata.deletionTimestamp !== null;
    if (owned && !deleting) {
      await this.#ensureAddress(key, service);
      return undefined;
    }
    if (!hasCleanupFinalizer(service)) {
      // Not ours and never was: nothing to write. A restored allocation (if any) goes.
      this.#release(key);
      return undefined;
    }
    const held = this.allocator.assigned(key);
    this.#release(key);
    if (!deleting && ingressIPsOf(service).length > 0) {
      await this.#core.patchNamespacedServiceStatus(
        { ...splitObjectKey(key), body: { status: { loadBalancer: { ingress: [] } } } },
        this.#mergePatch,
      );
    }
    await this.#patchFinalizers(service, false);
    if (held !== undefined) {
      const why = deleting
        ? 'the Service is being deleted'
        : 'the Service is no longer a LoadBalancer of this class';
      void this.#options.events.event(
        service,
        'Normal',
        'IPReleased',
        `Released IP ${JSON.stringify(held)}: ${why}`,
      );
    }
    return undefined;
  }

  /** Writes one pool's status (capacity, allocated, conditions) when it differs; updates its gauges. */
  async reconcilePoolStatus(name: string): Promise<undefined> {
    const pool = this.pools.get(name);
    if (pool === undefined) {
      poolCapacityGauge().remove({ pool: name });
      poolAllocatedGauge().remove({ pool: name });
      return undefined;
    }
    const usage = this.allocator.usage().get(name);
    const desired = poolStatusOf({
      usage,
      problem: this.allocator.pools.problems.get(name),
      previous: storedConditions(pool.status),
      generation: pool.metadata.generation,
      now: new Date(),
    });
    poolCapacityGauge().labels({ pool: name }).set(desired.capacity);
    poolAllocatedGauge().labels({ pool: name }).set(desired.allocated);
    if (poolStatusMatches(pool.status, desired)) return undefined;
    try {
      await this.#custom.patchClusterCustomObjectStatus(
        {
          group: PORTICO_GROUP,
          version: LOAD_BALANCER_IP_POOL_VERSION,
          plural: LOAD_BALANCER_IP_POOL_PLURAL,
          name,
          body: { status: desired },
        },
        this.#mergePatch,
      );
    } catch (error) {
      if (apiStatusCode(error) === 404) return undefined;
      throw error;
    }
    return undefined;
  }

  async #ensureAddress(key: string, service: V1Service): Promise<void> {
    if (!hasCleanupFinalizer(service)) {
      // The finalizer goes on before any address is taken, so a delete can never skip the release.
      // The update it causes brings the key back with a cache that has it; assigning then, not
      // now, saves the status write a cache still lacking this one would repeat.
      await this.#patchFinalizers(service, true);
      return;
    }
    const before = this.allocator.assigned(key);
    const result = this.allocator.assign(this.#requestOf(service));
    this.#touchPools();
    if (!result.ok) {
      this.#pending.add(key);
      if (before !== undefined) this.#retryPending();
      this.#logger.info('Service waits for an address', {
        service: key,
        reason: result.reason,
        message: result.message,
      });
      void this.#options.events.event(service, 'Warning', 'AllocationFailed', result.message);
      if (ingressIPsOf(service).length > 0) {
        await this.#core.patchNamespacedServiceStatus(
          { ...splitObjectKey(key), body: { status: { loadBalancer: { ingress: [] } } } },
          this.#mergePatch,
        );
      }
      return;
    }
    this.#pending.delete(key);
    if (before?.some((ip) => !result.ips.includes(ip))) this.#retryPending();
    const ingress = desiredIngress(result.ips);
    const conditions = serviceConditionsFor(service, result.orphaned, new Date());
    if (!ingressMatches(service, ingress) || conditions !== undefined) {
      await this.#core.patchNamespacedServiceStatus(
        {
          ...splitObjectKey(key),
          body: {
            // A merge patch replaces the whole conditions list, so it is conditional on the
            // cached resourceVersion: a condition another writer added meanwhile gives 409, not loss.
            ...(conditions !== undefined
              ? { metadata: { resourceVersion: service.metadata?.resourceVersion } }
              : {}),
            status: { loadBalancer: { ingress }, ...(conditions !== undefined ? { conditions } : {}) },
          },
        },
        this.#mergePatch,
      );
    }
    const changed = before === undefined || before.join(',') !== result.ips.join(',');
    if (changed) {
      void this.#options.events.event(
        service,
        'Normal',
        'IPAllocated',
        `Assigned IP ${JSON.stringify(result.ips)}`,
      );
    }
    for (const ip of result.orphaned) {
      const warned = `${key}=${ip}`;
      if (this.#warnedOrphans.has(warned)) continue;
      this.#warnedOrphans.add(warned);
      void this.#options.events.event(
        service,
        'Warning',
        'IPNotInPool',
        `keeps IP ${ip} although no LoadBalancerIPPool holds it any more; traffic is unaffected, but move the Service to a pool address when convenient`,
      );
    }
  }

  async #patchFinalizers(service: V1Service, present: boolean): Promise<void> {
    // The resourceVersion makes the patch conditional: a stale cache gets 409 and a retry,
    // instead of overwriting a finalizer someone else added meanwhile.
    await this.#core.patchNamespacedService(
      {
        name: service.metadata?.name ?? '',
        namespace: service.metadata?.namespace ?? '',
        body: {
          metadata: {
            resourceVersion: service.metadata?.resourceVersion,
            finalizers: finalizersWith(service, present),
          },
        },
      },
      this.#mergePatch,
    );
  }

  #requestOf(service: V1Service) {
    const namespace = this.namespaces.get(service.metadata?.namespace ?? '');
    return loadBalancerRequestOf(service, namespace?.metadata?.labels ?? {});
  }

  #release(key: string): void {
    for (const warned of this.#warnedOrphans)
      if (warned.startsWith(`${key}=`)) this.#warnedOrphans.delete(warned);
    this.#pending.delete(key);
    if (this.allocator.release(key)) {
      this.#touchPools();
      this.#retryPending();
    }
  }

  #retryPending(): void {
    for (const key of this.#pending) this.#serviceQueue.enqueue(key);
  }

  #touchPools(): void {
    for (const pool of this.pools.keys()) this.#poolQueue.enqueue(pool);
  }

  #enqueueService(service: V1Service): void {
    if (hasCleanupFinalizer(service) || handlesService(service, this.#options.loadBalancerClass)) {
      this.#serviceQueue.enqueue(objectKey(service));
      return;
    }
    // A Service that stopped being a LoadBalancer still needs its restored allocation dropped.
    if (this.allocator.assigned(objectKey(service)) !== undefined)
      this.#serviceQueue.enqueue(objectKey(service));
  }

  #onPoolsChanged(): void {
    const orphans = this.allocator.setPools(this.pools.list());
    if (orphans.length > 0) this.#logger.warn('addresses in use are in no pool any more', { orphans });
    this.#touchPools();
    if (!this.#rebuilt) return;
    // Any Service may now fit a pool, lose its pool, or become an orphan: reconcile them all.
    for (const service of this.services.list()) this.#enqueueService(service);
  }
}
