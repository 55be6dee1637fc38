/**
 * Recording core/v1 Events about the objects controllers act on, so users see with
 * `kubectl describe` what a controller did and why something is pending.
 */
import { hostname } from 'node:os';
import { CoreV1Api, type CoreV1Event, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { apiStatusCode, createConnectionReuse, describeError } from './kube.ts';
import type { Logger } from './logging.ts';

/** The two Event types Kubernetes accepts. */
export type EventType = 'Normal' | 'Warning';

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** Credentials for the core API. */
  kubeConfig: KubeConfig;
  /** `source.component` and `reportingComponent`, e.g. `endpoint-slice-controller`. */
  component: string;
  /** `source.host` and `reportingInstance`; the hostname when absent. */
  instance?: string;
  /** Receives write failures, which are never thrown. */
  logger: Logger;
  /** How many distinct (object, type, reason, message) series to remember for aggregation. */
  cacheSize?: number;
  /** Time source, for tests. */
  now?: () => Date;
}

interface SeriesState {
  /** The Event last written for this series; replaced (with its resourceVersion) on repeats. */
  event: CoreV1Event;
}

/**
 * Writes Events about objects. A repeat of the same (object, type, reason, message) updates the
 * existing Event's `count` and `lastTimestamp` instead of creating another one, as the upstream
 * recorder does, so a controller retrying a failing Service every few seconds leaves one line in
 * `kubectl describe` instead of hundreds.
 *
 * Writes for one series are serialised so concurrent repeats count correctly. {@link event}
 * never throws or rejects: an API server that refuses Events must not fail a reconcile.
 */
export class EventRecorder {
  readonly #api: CoreV1Api;
  /** Options of every call: all of this recorder's writes share one connection pool. */
  readonly #reuse = createConnectionReuse()();
  readonly #component: string;
  readonly #instance: string;
  readonly #logger: Logger;
  readonly #cacheSize: number;
  readonly #now: () => Date;
  /** Map order doubles as recency order: a touched series is re-inserted at the end. */
  readonly #series = new Map<string, SeriesState>();
  readonly #pending = new Map<string, Promise<void>>();

  constructor(options: EventRecorderOptions) {
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#component = options.component;
    this.#instance = options.instance ?? hostname();
    this.#logger = options.logger.child({ component: options.component });
    this.#cacheSize = options.cacheSize ?? 4096;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Records that `type`/`reason` happened to `obj` with a human-readable `message`. `reason` is a
   * stable PascalCase word (`AllocationFailed`); `message` says what and why. The returned promise
   * settles when the write is done and never rejects; callers usually do not await it.
   */
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const seriesKey = seriesKeyOf(obj, type, reason, message);
    const previous = this.#pending.get(seriesKey) ?? Promise.resolve();
    const next = previous.then(() => this.#write(seriesKey, obj, type, reason, message));
    this.#pending.set(seriesKey, next);
    void next.then(() => {
      if (this.#pending.get(seriesKey) === next) {
        this.#pending.delete(seriesKey);
      }
    });
    return next;
  }

  async #write(seriesKey: string, obj: KubernetesObject, type: EventType, reason: string, message: string) {
    const now = this.#now();
    const known = this.#series.get(seriesKey);
    try {
      if (known !== undefined) {
        const updated = await this.#increment(known.event, now);
        if (updated !== undefined) {
          this.#remember(seriesKey, updated);
          return;
        }
      }
      const created = await this.#api.createNamespacedEvent(
        { namespace: eventNamespace(obj), body: this.#newEvent(obj, type, reason, message, now) },
        this.#reuse,
      );
      this.#remember(seriesKey, created);
    } catch (error) {
      this.#logger.warn('could not record event', {
        object: describeObject(obj),
        type,
        reason,
        message,
        error: describeError(error),
      });
    }
  }

  /** Bumps count and lastTimestamp; undefined when the Event is gone (expired by TTL) and must be recreated. */
  async #increment(event: CoreV1Event, now: Date): Promise<CoreV1Event | undefined> {
    const name = event.metadata.name ?? '';
    const namespace = event.metadata.namespace ?? '';
    let current = event;
    // One retry on conflict: someone else (another replica) touched the Event since we wrote it.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        return await this.#api.replaceNamespacedEvent(
          { name, namespace, body: { ...current, count: (current.count ?? 1) + 1, lastTimestamp: now } },
          this.#reuse,
        );
      } catch (error) {
        const status = apiStatusCode(error);
        if (status === 404) {
          return undefined;
        }
        if (status !== 409 || attempt === 1) {
          throw error;
        }
        try {
          current = await this.#api.readNamespacedEvent({ name, namespace }, this.#reuse);
        } catch (readError) {
          if (apiStatusCode(readError) === 404) {
            return undefined;
          }
          throw readError;
        }
      }
    }
    return undefined;
  }

  #newEvent(obj: KubernetesObject, type: EventType, reason: string, message: string, now: Date): CoreV1Event {
    const metadata = obj.metadata ?? {};
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        // Upstream's naming: the object's name plus a unique hex suffix (it uses nanoseconds).
        name: `${metadata.name ?? 'unknown'}.${uniqueSuffix(now)}`,
        namespace: eventNamespace(obj),
      },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resourceVersion: metadata.resourceVersion,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.#component, host: this.#instance },
      reportingComponent: this.#component,
      reportingInstance: this.#instance,
    };
  }

  #remember(seriesKey: string, event: CoreV1Event): void {
    this.#series.delete(seriesKey);
    this.#series.set(seriesKey, { event });
    if (this.#series.size > this.#cacheSize) {
      const oldest = this.#series.keys().next().value;
      if (oldest !== undefined) {
        this.#series.delete(oldest);
      }
    }
  }
}

let suffixCounter = 0;

function uniqueSuffix(now: Date): string {
  // Millisecond clocks collide within a burst; a process-wide counter keeps names distinct.
  suffixCounter = (suffixCounter + 1) % 0x10000;
  return (BigInt(now.getTime()) * 1_000_000n + BigInt(suffixCounter)).toString(16);
}

/** Events live in the object's namespace; cluster-scoped objects get theirs in `default`, like upstream. */
function eventNamespace(obj: KubernetesObject): string {
  return obj.metadata?.namespace || 'default';
}

function describeObject(obj: KubernetesObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return `${obj.kind ?? 'object'} ${namespace ? `${namespace}/${name}` : name}`;
}

function seriesKeyOf(obj: KubernetesObject, type: EventType, reason: string, message: string): string {
  const metadata = obj.metadata ?? {};
  const identity = metadata.uid ?? `${obj.kind}/${metadata.namespace ?? ''}/${metadata.name ?? ''}`;
  return JSON.stringify([identity, type, reason, message]);
}
