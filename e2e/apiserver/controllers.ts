/**
 * The controllers that run inside the API server process because nothing else would: the garbage
 * collector (owner references, foreground and orphan deletion), namespace cleanup, and the CRD
 * controller that starts serving a CustomResourceDefinition's resources.
 *
 * They react to store events but act later (on a timer tick), through the registry like any client,
 * so their writes get resourceVersions, admission and watch events of their own.
 */

import { resourceKeyOf, resourceTypesOfCrd } from './catalog.ts';
import { ApiError } from './errors.ts';
import { isObject, type JsonObject } from './patch.ts';
import {
  FOREGROUND_FINALIZER,
  kubeTimestamp,
  ORPHAN_FINALIZER,
  type Registry,
  SYSTEM_USER,
  type WriteOptions,
} from './registry.ts';
import type { StoreEvent } from './store.ts';

const SYSTEM: WriteOptions = { dryRun: false, user: SYSTEM_USER };
const CRD_KEY = 'apiextensions.k8s.io/customresourcedefinitions';
const RETRY_MS = 50;

function metaOf(object: JsonObject): JsonObject {
  return object.metadata as JsonObject;
}

function finalizersOf(object: JsonObject): string[] {
  const f = metaOf(object).finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}

function ignoreGone(err: unknown): void {
  if (err instanceof ApiError && (err.code === 404 || err.code === 409)) return;
  throw err;
}

/** Runs the in-process controllers against a registry. */
export class InProcessControllers {
  private readonly registry: Registry;
  private readonly pendingOwners = new Set<string>();
  private readonly pendingNamespaces = new Set<string>();
  private readonly pendingCrds = new Set<string>();
  /** Uids of objects created or updated with an owner reference that did not resolve. */
  private readonly pendingDangling = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private idleWaiters: (() => void)[] = [];

  constructor(registry: Registry) {
    this.registry = registry;
    this.unsubscribe = registry.store.onEvent((event) => this.observe(event));
  }

  /** Serves the resources of every stored CRD (after a snapshot load) and queues pending work. */
  resync(): void {
    for (const crd of this.registry.store.list(CRD_KEY)) {
      this.serveCrd(crd);
      this.pendingCrds.add(String(metaOf(crd).name));
    }
    for (const ns of this.registry.store.list('/namespaces')) {
      if (metaOf(ns).deletionTimestamp !== undefined) this.pendingNamespaces.add(String(metaOf(ns).name));
    }
    this.schedule();
  }

  /** Resolves once no controller work is queued (tests wait on this instead of sleeping). */
  idle(): Promise<void> {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops reacting to events. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private busy(): boolean {
    return this.running || this.queued() > 0;
  }

  private queued(): number {
    return (
      this.pendingOwners.size +
      this.pendingNamespaces.size +
      this.pendingCrds.size +
      this.pendingDangling.size
    );
  }

  private observe(event: StoreEvent): void {
    const meta = metaOf(event.object);
    const queuedBefore = this.queued();
    if (event.type !== 'DELETED') {
      const refs = (meta.ownerReferences as { uid: string }[] | undefined) ?? [];
      if (refs.some((ref) => !this.ownerResolves(ref.uid, event.namespace)))
        this.pendingDangling.add(String(meta.uid));
    }
    if (event.type === 'DELETED') {
      this.pendingOwners.add(String(meta.uid));
      if (event.namespace !== '') this.pendingNamespaces.add(event.namespace);
    } else if (meta.deletionTimestamp !== undefined) {
      const finalizers = finalizersOf(event.object);
      if (finalizers.includes(FOREGROUND_FINALIZER) || finalizers.includes(ORPHAN_FINALIZER)) {
        this.pendingOwners.add(String(meta.uid));
      }
      if (event.resourceKey === '/namespaces') this.pendingNamespaces.add(String(meta.name));
    }
    for (const ref of (meta.ownerReferences as { uid: string }[] | undefined) ?? []) {
      if (event.type === 'DELETED') this.pendingOwners.add(ref.uid);
    }
    if (event.resourceKey === CRD_KEY) {
      if (event.type === 'DELETED') {
        const removed = this.registry.catalog.removeCustom(String(meta.name));
        for (const type of removed.slice(0, 1)) {
          for (const object of this.registry.store.list(resourceKeyOf(type))) {
            const m = metaOf(object);
            this.registry.store.remove(resourceKeyOf(type), String(m.namespace ?? ''), String(m.name));
          }
        }
      } else {
        this.serveCrd(event.object);
        this.pendingCrds.add(String(meta.name));
      }
    }
    if (this.queued() > queuedBefore) this.schedule();
  }

  private serveCrd(crd: JsonObject): void {
    try {
      this.registry.catalog.setCustom(String(metaOf(crd).name), resourceTypesOfCrd(crd));
    } catch {
      this.registry.catalog.removeCustom(String(metaOf(crd).name));
    }
  }

  private schedule(delay = 0): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, delay);
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let failed = false;
    try {
      for (const name of this.take(this.pendingCrds))
        failed = !(await this.attempt(() => this.establishCrd(name))) || failed;
      for (const uid of this.take(this.pendingOwners))
        failed = !(await this.attempt(() => this.collect(uid))) || failed;
      for (const uid of this.take(this.pendingDangling))
        failed = !(await this.attempt(() => this.dropDangling(uid))) || failed;
      for (const ns of this.take(this.pendingNamespaces))
        failed = !(await this.attempt(() => this.cleanNamespace(ns))) || failed;
    } finally {
      this.running = false;
    }
    if (this.busy()) this.schedule(failed ? RETRY_MS : 0);
    else for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private take(set: Set<string>): string[] {
    const items = [...set];
    set.clear();
    return items;
  }

  private async attempt(work: () => Promise<boolean>): Promise<boolean> {
    try {
      return await work();
    } catch {
      return false;
    }
  }

  /** Marks a CRD Established with its accepted names. Returns false to be retried. */
  private async establishCrd(name: string): Promise<boolean> {
    const type = this.registry.catalog.byKey(CRD_KEY)!;
    const crd = this.registry.store.get(CRD_KEY, '', name);
    if (!crd) return true;
    const status = isObject(crd.status) ? crd.status : {};
    const conditions = Array.isArray(status.conditions) ? (status.conditions as JsonObject[]) : [];
    if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) return true;
    const now = kubeTimestamp();
    const names = isObject(crd.spec) ? (crd.spec as JsonObject).names : {};
    try {
      await this.registry.mutate(
        type,
        '',
        name,
        (current) => ({
          ...current,
          status: {
            acceptedNames: names,
            storedVersions: (
              (current.spec as { versions: { name: string; storage: boolean }[] }).versions ?? []
            )
              .filter((v) => v.storage)
              .map((v) => v.name),
            conditions: [
              {
                type: 'NamesAccepted',
                status: 'True',
                reason: 'NoConflicts',
                message: 'no conflicts found',
                lastTransitionTime: now,
              },
              {
                type: 'Established',
                status: 'True',
                reason: 'InitialNamesAccepted',
                message: 'the initial names have been accepted',
                lastTransitionTime: now,
              },
            ],
          },
        }),
        SYSTEM,
        'status',
      );
    } catch (err) {
      ignoreGone(err);
    }
    return true;
  }

  /**
   * Garbage collection around one owner uid: deletes dependents of a vanished owner (or drops the
   * reference when another owner remains), and completes foreground and orphan deletions.
   */
  private async collect(ownerUid: string): Promise<boolean> {
    const store = this.registry.store;
    const ownerLocation = store.locate(ownerUid);
    const owner = ownerLocation
      ? store.get(ownerLocation.resourceKey, ownerLocation.namespace, ownerLocation.name)
      : undefined;
    const ownerFinalizers = owner ? finalizersOf(owner) : [];
    const ownerDeleting = owner !== undefined && metaOf(owner).deletionTimestamp !== undefined;
    const orphaning = ownerDeleting && ownerFinalizers.includes(ORPHAN_FINALIZER);
    const foreground = ownerDeleting && ownerFinalizers.includes(FOREGROUND_FINALIZER);
    if (owner && !orphaning && !foreground) return true;
    for (const dependentUid of store.dependentsOf(ownerUid)) {
      const where = store.locate(dependentUid);
      if (!where) continue;
      const type = this.registry.catalog.byKey(where.resourceKey);
      const dependent = store.get(where.resourceKey, where.namespace, where.name);
      if (!type || !dependent) continue;
      const refs = (metaOf(dependent).ownerReferences as { uid: string }[] | undefined) ?? [];
      const otherOwnersAlive = refs.some((r) => r.uid !== ownerUid && store.locate(r.uid) !== undefined);
      try {
        if (orphaning || otherOwnersAlive) {
          await this.registry.mutate(
            type,
            where.namespace,
            where.name,
            (current) => {
              const m = metaOf(current);
              const kept = ((m.ownerReferences as { uid: string }[] | undefined) ?? []).filter(
                (r) => r.uid !== ownerUid,
              );
              if (kept.length > 0) m.ownerReferences = kept;
              else delete m.ownerReferences;
              return current;
            },
            SYSTEM,
          );
        } else if (metaOf(dependent).deletionTimestamp === undefined) {
          await this.registry.delete(
            type,
            where.namespace,
            where.name,
            { propagationPolicy: foreground ? 'Foreground' : 'Background' },
            SYSTEM,
          );
        }
      } catch (err) {
        ignoreGone(err);
      }
    }
    if (owner && ownerLocation && (orphaning || (foreground && store.dependentsOf(ownerUid).length === 0))) {
      const type = this.registry.catalog.byKey(ownerLocation.resourceKey);
      if (!type) return true;
      const done = orphaning ? ORPHAN_FINALIZER : FOREGROUND_FINALIZER;
      try {
        await this.registry.mutate(
          type,
          ownerLocation.namespace,
          ownerLocation.name,
          (current) => {
            metaOf(current).finalizers = finalizersOf(current).filter((f) => f !== done);
            return current;
          },
          SYSTEM,
        );
      } catch (err) {
        ignoreGone(err);
      }
    }
    return true;
  }

  /**
   * Whether an owner reference resolves: the uid exists, and a namespaced owner lives in the
   * dependent's namespace (upstream treats an owner in another namespace as absent).
   */
  private ownerResolves(ownerUid: string, dependentNamespace: string): boolean {
    const where = this.registry.store.locate(ownerUid);
    return where !== undefined && (where.namespace === '' || where.namespace === dependentNamespace);
  }

  /**
   * What the garbage collector does with references to owners that do not exist: an object whose
   * owners are all absent is deleted; otherwise the dangling references are removed.
   */
  private async dropDangling(uid: string): Promise<boolean> {
    const where = this.registry.store.locate(uid);
    const type = where ? this.registry.catalog.byKey(where.resourceKey) : undefined;
    const object = where
      ? this.registry.store.get(where.resourceKey, where.namespace, where.name)
      : undefined;
    if (!where || !type || !object) return true;
    const refs = (metaOf(object).ownerReferences as { uid: string }[] | undefined) ?? [];
    const solid = refs.filter((ref) => this.ownerResolves(ref.uid, where.namespace));
    if (solid.length === refs.length) return true;
    try {
      if (solid.length === 0) {
        if (metaOf(object).deletionTimestamp === undefined) {
          await this.registry.delete(
            type,
            where.namespace,
            where.name,
            { propagationPolicy: 'Background' },
            SYSTEM,
          );
        }
      } else {
        await this.registry.mutate(
          type,
          where.namespace,
          where.name,
          (current) => {
            const m = metaOf(current);
            m.ownerReferences = ((m.ownerReferences as { uid: string }[] | undefined) ?? []).filter((ref) =>
              this.ownerResolves(ref.uid, where.namespace),
            );
            return current;
          },
          SYSTEM,
        );
      }
    } catch (err) {
      ignoreGone(err);
    }
    return true;
  }

  /** Deletes the content of a terminating namespace, then the namespace itself once it is empty. */
  private async cleanNamespace(name: string): Promise<boolean> {
    const store = this.registry.store;
    const ns = store.get('/namespaces', '', name);
    if (!ns || metaOf(ns).deletionTimestamp === undefined) return true;
    let remaining = 0;
    for (const type of this.registry.catalog.all()) {
      if (!type.namespaced) continue;
      const key = resourceKeyOf(type);
      if (this.registry.catalog.byKey(key) !== type) continue;
      for (const object of store.list(key, name)) {
        remaining++;
        if (metaOf(object).deletionTimestamp !== undefined) continue;
        try {
          await this.registry.delete(
            type,
            name,
            String(metaOf(object).name),
            { gracePeriodSeconds: 0 },
            SYSTEM,
          );
        } catch (err) {
          ignoreGone(err);
        }
      }
    }
    const left = this.registry.catalog
      .all()
      .reduce((n, t) => n + (t.namespaced ? store.count(resourceKeyOf(t), name) : 0), 0);
    if (left === 0 && finalizersOf(ns).length === 0) {
      store.remove('/namespaces', '', name);
      return true;
    }
    return remaining >= 0;
  }
}
