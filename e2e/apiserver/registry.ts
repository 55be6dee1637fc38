/**
 * REST semantics on top of the store: what kube-apiserver's generic registry and the kinds'
 * strategies do on create, update, patch and delete. Metadata bookkeeping (uid, generation,
 * generateName, resourceVersion preconditions), the status subresource split, defaulting,
 * admission, validation, finalizers, graceful pod deletion and dry run all live here, independent
 * of HTTP, so tests and the garbage collector call the same code the router does.
 */

import { randomUUID } from 'node:crypto';
import { type ResourceCatalog, resourceKeyOf } from './catalog.ts';
import { applyDefaults, keepAllocatedServiceValues, podQosClass } from './defaults.ts';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  expired,
  forbidden,
  invalid,
  MODIFIED_CONFLICT,
  notFound,
} from './errors.ts';
import { type StorageView, storageViewOf } from './events.ts';
import { checkUnknownFields, type FieldValidation } from './field-validation.ts';
import { isObject, type JsonObject, jsonEqual } from './patch.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import type { ObjectPredicate } from './selectors.ts';
import type { ObjectStore } from './store.ts';
import { validateMetadata, validateObject, validateUpdate } from './validation.ts';

/** Who makes a request, as admission webhooks see it. */
export interface RequestUser {
  username: string;
  groups: string[];
}

/** What admission webhooks are told about a request (the contract of admission.ts). */
export interface AdmissionAttributes {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  resource: ResourceType;
  subResource?: string;
  namespace?: string;
  name: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun: boolean;
  userInfo: RequestUser;
}

/** The verdict of admission. */
export type AdmissionOutcome =
  | { allowed: true; object?: unknown; warnings?: string[] }
  | {
      allowed: false;
      code: number;
      reason: string;
      message: string;
      /** The denying webhook's `status.details` (field causes), passed through as kube-apiserver does. */
      details?: Record<string, unknown>;
    };

/** Runs mutating then validating webhooks (admission.ts `admit`). */
export type AdmissionHook = (
  attrs: AdmissionAttributes,
  configs: { mutating: unknown[]; validating: unknown[] },
  lookups: { namespaceLabels(ns: string): Record<string, string> | undefined },
) => Promise<AdmissionOutcome>;

/** Per-request options of a write. */
export interface WriteOptions {
  dryRun: boolean;
  user: RequestUser;
  fieldManager?: string;
  /** What to do about fields the kind does not have (default Warn, like kube-apiserver). */
  fieldValidation?: FieldValidation;
}

/** The result of a write: the object (as stored, or as it would be with dry run) and admission warnings. */
export interface WriteResult {
  object: JsonObject;
  created: boolean;
  warnings: string[];
}

/** meta/v1 DeleteOptions fields the server honours. */
export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** The result of a delete: the object and whether it is gone (false: waiting on finalizers or grace). */
export interface DeleteResult {
  object: JsonObject;
  gone: boolean;
  warnings: string[];
}

/** Query parameters of a list. */
export interface ListQuery {
  label?: ObjectPredicate;
  field?: ObjectPredicate;
  limit?: number;
  continueToken?: string;
}

/** One page of a list. */
export interface ListPage {
  items: JsonObject[];
  resourceVersion: string;
  continueToken?: string;
  /** Objects after this page; unset for lists with selectors, as kube-apiserver leaves it. */
  remainingItemCount?: number;
}

/** The user the server's own components (garbage collector, namespace cleanup) act as. */
export const SYSTEM_USER: RequestUser = {
  username: 'system:serviceaccount:kube-system:generic-garbage-collector',
  groups: ['system:serviceaccounts', 'system:authenticated'],
};

/** Finalizers the garbage collector acts on. */
export const FOREGROUND_FINALIZER = 'foregroundDeletion';
/** The finalizer asking the garbage collector to orphan dependents before the owner goes. */
export const ORPHAN_FINALIZER = 'orphan';

/** Thrown when the object changed while an unconditional write awaited admission; the write is retried. */
class StaleRead extends Error {
  /** The 409 to answer with when retries run out. */
  readonly conflict: ApiError;

  constructor(resource: ResourceType, name: string) {
    super('stale read');
    this.conflict = conflict(resource.plural, resource.group, name, MODIFIED_CONFLICT);
  }
}

const MAX_RETRIES = 8;

let formattedSecond = Number.NaN;
let formattedTimestamp = '';

/** RFC 3339 with second precision, as Kubernetes writes timestamps. */
export function kubeTimestamp(date = new Date()): string {
  // Writes come in bursts within one second; formatting once per second keeps it off the profile.
  const second = Math.floor(date.getTime() / 1000);
  if (second !== formattedSecond) {
    formattedSecond = second;
    formattedTimestamp = date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return formattedTimestamp;
}

const NAME_SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function generatedName(prefix: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++)
    suffix += NAME_SUFFIX_ALPHABET[Math.floor(Math.random() * NAME_SUFFIX_ALPHABET.length)];
  return prefix.slice(0, 58) + suffix;
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The metadata of an object, typed loosely (objects come from clients). */
export function metaOf(object: JsonObject): JsonObject {
  if (!isObject(object.metadata)) object.metadata = {};
  return object.metadata as JsonObject;
}

function finalizersOf(object: JsonObject): string[] {
  const f = (object.metadata as JsonObject | undefined)?.finalizers;
  return Array.isArray(f) ? f.filter((x): x is string => typeof x === 'string') : [];
}

/** Everything but metadata (and status, for kinds with a status subresource). */
function specPart(resource: ResourceType, object: JsonObject): JsonObject {
  const { metadata: _m, status, ...rest } = object;
  return resource.status ? rest : { ...rest, status };
}

/** Equal apart from resourceVersion and managedFields timestamps: such a write is a no-op. */
function sameContent(a: JsonObject, b: JsonObject): boolean {
  const strip = (o: JsonObject): JsonObject => {
    const meta = { ...(o.metadata as JsonObject) };
    delete meta.resourceVersion;
    delete meta.managedFields;
    return { ...o, metadata: meta };
  };
  return jsonEqual(clone(strip(a)), clone(strip(b)));
}

function encodeContinue(revision: number, after: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: revision, start: after })).toString(
    'base64url',
  );
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
      rv: unknown;
      start: unknown;
    };
    if (typeof parsed.rv === 'number' && typeof parsed.start === 'string')
      return { rv: parsed.rv, start: parsed.start };
  } catch {
    // fall through to the error below
  }
  throw badRequest(
    'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
  );
}

/** REST semantics over an {@link ObjectStore}. */
export class Registry {
  readonly store: ObjectStore;
  readonly catalog: ResourceCatalog;
  /** Admission (webhooks); undefined admits everything unchanged. */
  admit: AdmissionHook | undefined;
  /** Called after each committed write, for the garbage collector and CRD controller. */
  private readonly afterWrite: (() => void)[] = [];

  constructor(store: ObjectStore, catalog: ResourceCatalog, admit?: AdmissionHook) {
    this.store = store;
    this.catalog = catalog;
    this.admit = admit;
  }

  /** A copy of one object (the caller may modify it), or 404 NotFound. */
  get(resource: ResourceType, namespace: string, name: string): JsonObject {
    return clone(this.readShared(resource, namespace, name));
  }

  /**
   * One object or 404 NotFound, without copying: the object the store holds, shared with every
   * reader. Modifying it corrupts the store (a later write of it looks like a no-op), so only code
   * that just serialises or copies it uses this.
   */
  readShared(resource: ResourceType, namespace: string, name: string): JsonObject {
    const view = this.viewOf(resource);
    if (view) return view.fromStored(this.readShared(view.storage, namespace, name));
    const object = this.store.get(resourceKeyOf(resource), resource.namespaced ? namespace : '', name);
    if (!object) throw notFound(resource.plural, resource.group, name);
    return object;
  }

  /** One page of a list with selectors, limit and continue, as copies the caller may modify. */
  list(resource: ResourceType, namespace: string | undefined, query: ListQuery): ListPage {
    const page = this.listShared(resource, namespace, query);
    return { ...page, items: page.items.map((item) => clone(item)) };
  }

  /** Like {@link list}, but the items are the stored objects themselves (see {@link readShared}). */
  listShared(resource: ResourceType, namespace: string | undefined, query: ListQuery): ListPage {
    const view = this.viewOf(resource);
    if (view) {
      const page = this.listShared(view.storage, namespace, query);
      return { ...page, items: page.items.map(view.fromStored) };
    }
    let revision = this.store.currentRevision();
    let after: string | undefined;
    let atRevision: number | undefined;
    if (query.continueToken !== undefined && query.continueToken !== '') {
      const token = decodeContinue(query.continueToken);
      if (token.rv < this.store.oldestResumableRevision()) {
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
      revision = token.rv;
      atRevision = token.rv;
      after = token.start;
    }
    const { label, field } = query;
    const filter =
      label || field ? (o: JsonObject) => (!label || label(o)) && (!field || field(o)) : undefined;
    const found = this.store.listPage(resourceKeyOf(resource), {
      namespace: resource.namespaced ? namespace : undefined,
      after,
      atRevision,
      limit: query.limit,
      filter,
    });
    const page: ListPage = { items: found.items, resourceVersion: String(revision) };
    if (found.continueAfter !== undefined) {
      page.continueToken = encodeContinue(revision, found.continueAfter);
      if (found.remaining !== undefined) page.remainingItemCount = found.remaining;
    }
    return page;
  }

  /**
   * How a resource maps onto the storage of another: events.k8s.io Events onto core Events, and a
   * CRD's non-storage versions onto its storage version (conversion strategy None: only apiVersion
   * changes). Undefined when the resource is stored as itself.
   */
  viewOf(resource: ResourceType): StorageView | undefined {
    const events = storageViewOf(resource);
    if (events || resource.custom === undefined) return events;
    const storage = this.catalog.byKey(resourceKeyOf(resource));
    if (!storage || storage === resource) return undefined;
    const storedVersion = apiVersionOf(storage);
    const servedVersion = apiVersionOf(resource);
    return {
      storage,
      toStored: (object) => (isObject(object) ? { ...object, apiVersion: storedVersion } : object),
      fromStored: (object) => ({ ...object, apiVersion: servedVersion }),
    };
  }

  /** Whether the object exists. */
  exists(resource: ResourceType, namespace: string, name: string): boolean {
    const stored = this.viewOf(resource)?.storage ?? resource;
    return this.store.get(resourceKeyOf(stored), stored.namespaced ? namespace : '', name) !== undefined;
  }

  /** Registers a callback run after every committed write. */
  onWrite(callback: () => void): void {
    this.afterWrite.push(callback);
  }

  /** POST: creates an object in `namespace` ('' for cluster-scoped kinds). */
  async create(
    resource: ResourceType,
    namespace: string,
    body: unknown,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const view = this.viewOf(resource);
    if (view) {
      const stored = view.toStored(this.checkBody(resource, namespace, body));
      const result = await this.create(view.storage, namespace, stored, opts);
      return { ...result, object: view.fromStored(result.object) };
    }
    const object = this.checkBody(resource, namespace, body);
    const fieldWarnings = checkUnknownFields(resource, object, opts.fieldValidation ?? 'Warn');
    const meta = metaOf(object);
    if (
      (meta.name === undefined || meta.name === '') &&
      typeof meta.generateName === 'string' &&
      meta.generateName !== ''
    ) {
      meta.name = generatedName(meta.generateName);
    }
    const name = typeof meta.name === 'string' ? meta.name : '';
    if (name === '') throw invalid(resource.kind, resource.group, '', validateMetadata(resource, object));
    this.checkNamespaceAcceptsContent(resource, namespace, name);
    if (this.store.get(resourceKeyOf(resource), namespace, name))
      throw alreadyExists(resource.plural, resource.group, name);
    meta.uid = randomUUID();
    meta.creationTimestamp = kubeTimestamp();
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (resource.hasSpec || resource.custom !== undefined) meta.generation = 1;
    else delete meta.generation;
    this.prepareStatusForCreate(resource, object);
    applyDefaults(resource, object);
    const admitted = await this.runAdmission('CREATE', resource, namespace, name, object, undefined, opts);
    const final = admitted.object;
    this.restoreCreateInvariants(final, meta);
    this.validate(resource, final, name);
    if (this.store.get(resourceKeyOf(resource), namespace, name))
      throw alreadyExists(resource.plural, resource.group, name);
    const warnings = [...fieldWarnings, ...admitted.warnings];
    if (opts.dryRun) return { object: final, created: true, warnings };
    const stored = this.store.put(resourceKeyOf(resource), final);
    this.notifyWrite();
    return { object: stored, created: true, warnings };
  }

  /**
   * PUT of the main resource or its status. A resourceVersion in the body is a precondition
   * (409 Conflict when stale); without one the update is unconditional.
   */
  async update(
    resource: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    opts: WriteOptions,
    subresource?: 'status',
  ): Promise<WriteResult> {
    const view = this.viewOf(resource);
    if (view) {
      const stored = view.toStored(this.checkBody(resource, namespace, body));
      const result = await this.update(view.storage, namespace, name, stored, opts, subresource);
      return { ...result, object: view.fromStored(result.object) };
    }
    const object = this.checkBody(resource, namespace, body);
    const fieldWarnings = checkUnknownFields(resource, object, opts.fieldValidation ?? 'Warn');
    const meta = metaOf(object);
    if (meta.name !== name) {
      throw badRequest(
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`,
      );
    }
    const precondition =
      typeof meta.resourceVersion === 'string' && meta.resourceVersion !== ''
        ? meta.resourceVersion
        : undefined;
    return this.retrying(async () => {
      const current = this.readShared(resource, namespace, name);
      const currentVersion = (current.metadata as JsonObject).resourceVersion as string;
      if (precondition !== undefined && precondition !== currentVersion) {
        throw conflict(resource.plural, resource.group, name, MODIFIED_CONFLICT);
      }
      const result = await this.commitUpdate(
        resource,
        namespace,
        current,
        clone(object),
        opts,
        subresource,
        precondition !== undefined,
      );
      return { ...result, warnings: [...fieldWarnings, ...result.warnings] };
    });
  }

  /**
   * Applies `mutate` to the current object and commits the result as an update, retrying when
   * the object changes meanwhile (PATCH semantics). `mutate` throws an ApiError to reject.
   */
  async mutate(
    resource: ResourceType,
    namespace: string,
    name: string,
    mutateFn: (current: JsonObject) => JsonObject,
    opts: WriteOptions,
    subresource?: 'status',
  ): Promise<WriteResult> {
    const view = this.viewOf(resource);
    if (view) {
      const viaView = (current: JsonObject): JsonObject =>
        view.toStored(mutateFn(view.fromStored(current))) as JsonObject;
      const result = await this.mutate(view.storage, namespace, name, viaView, opts, subresource);
      return { ...result, object: view.fromStored(result.object) };
    }
    return this.retrying(async () => {
      const current = this.readShared(resource, namespace, name);
      const candidate = mutateFn(clone(current));
      if (!isObject(candidate)) throw badRequest('the patch produced something other than an object');
      const fieldWarnings = checkUnknownFields(resource, candidate, opts.fieldValidation ?? 'Warn');
      const candidateMeta = metaOf(candidate);
      if (candidateMeta.name !== undefined && candidateMeta.name !== name) {
        throw badRequest(
          `the name of the object (${String(candidateMeta.name)}) does not match the name on the URL (${name})`,
        );
      }
      const requestedVersion = candidateMeta.resourceVersion;
      const currentVersion = (current.metadata as JsonObject).resourceVersion;
      if (
        typeof requestedVersion === 'string' &&
        requestedVersion !== '' &&
        requestedVersion !== currentVersion
      ) {
        throw conflict(resource.plural, resource.group, name, MODIFIED_CONFLICT);
      }
      const result = await this.commitUpdate(
        resource,
        namespace,
        current,
        candidate,
        opts,
        subresource,
        false,
      );
      return { ...result, warnings: [...fieldWarnings, ...result.warnings] };
    });
  }

  /**
   * POST pods/<name>/binding: assigns the pod to `binding.target.name` (spec.nodeName, the
   * binding's annotations and the PodScheduled condition, in one write). 409 Conflict when the pod
   * is already assigned, as kube-apiserver answers a second scheduler.
   */
  async bind(
    pods: ResourceType,
    namespace: string,
    name: string,
    binding: unknown,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    if (!isObject(binding)) throw badRequest('the body of the request was not a JSON object');
    const meta = isObject(binding.metadata) ? binding.metadata : {};
    if (meta.name !== undefined && meta.name !== name)
      throw badRequest('name in URL does not match name in Binding object');
    const target = isObject(binding.target) ? binding.target : {};
    const kind = typeof target.kind === 'string' ? target.kind : '';
    if (kind !== '' && kind !== 'Node') {
      throw invalid('Binding', '', name, [
        {
          reason: 'FieldValueNotSupported',
          field: 'target.kind',
          message: `Unsupported value: "${kind}": supported values: "Node", "<empty>"`,
        },
      ]);
    }
    const node = typeof target.name === 'string' ? target.name : '';
    if (node === '')
      throw invalid('Binding', '', name, [
        { reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' },
      ]);
    return this.retrying(async () => {
      const current = this.readShared(pods, namespace, name);
      const currentMeta = current.metadata as JsonObject;
      const spec = isObject(current.spec) ? current.spec : {};
      if (currentMeta.deletionTimestamp !== undefined)
        throw conflict(
          'pods/binding',
          '',
          name,
          `pod ${name} is being deleted, cannot be assigned to a host`,
        );
      if (typeof spec.nodeName === 'string' && spec.nodeName !== '')
        throw conflict(
          'pods/binding',
          '',
          name,
          `pod ${name} is already assigned to node "${spec.nodeName}"`,
        );
      if (Array.isArray(spec.schedulingGates) && spec.schedulingGates.length > 0)
        throw conflict('pods/binding', '', name, `pod ${name} has non-empty .spec.schedulingGates`);
      const next = clone(current);
      (next.spec as JsonObject).nodeName = node;
      if (isObject(meta.annotations)) {
        const nextMeta = metaOf(next);
        nextMeta.annotations = {
          ...(isObject(nextMeta.annotations) ? nextMeta.annotations : {}),
          ...meta.annotations,
        };
      }
      const status: JsonObject = isObject(next.status) ? next.status : {};
      const conditions = (Array.isArray(status.conditions) ? status.conditions : []).filter(
        (c) => !(isObject(c) && c.type === 'PodScheduled'),
      );
      conditions.push({
        type: 'PodScheduled',
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: kubeTimestamp(),
      });
      status.conditions = conditions;
      next.status = status;
      return this.commitUpdate(pods, namespace, current, next, opts, 'binding', false);
    });
  }

  /** DELETE of one object with grace period, propagation policy and preconditions. */
  async delete(
    resource: ResourceType,
    namespace: string,
    name: string,
    options: DeleteOptions,
    opts: WriteOptions,
  ): Promise<DeleteResult> {
    const view = this.viewOf(resource);
    if (view) {
      const result = await this.delete(view.storage, namespace, name, options, opts);
      return { ...result, object: view.fromStored(result.object) };
    }
    const key = resourceKeyOf(resource);
    const ns = resource.namespaced ? namespace : '';
    for (let attempt = 0; ; attempt++) {
      const current = this.readShared(resource, ns, name);
      const meta = current.metadata as JsonObject;
      const pre = options.preconditions ?? {};
      if (pre.uid !== undefined && pre.uid !== '' && pre.uid !== meta.uid) {
        throw conflict(
          resource.plural,
          resource.group,
          name,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(meta.uid)}`,
        );
      }
      if (
        pre.resourceVersion !== undefined &&
        pre.resourceVersion !== '' &&
        pre.resourceVersion !== meta.resourceVersion
      ) {
        throw conflict(
          resource.plural,
          resource.group,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(meta.resourceVersion)}`,
        );
      }
      const admitted = await this.runAdmission('DELETE', resource, ns, name, undefined, current, opts);
      if (this.store.get(key, ns, name) !== current) {
        if (attempt < MAX_RETRIES) continue;
        throw conflict(resource.plural, resource.group, name, MODIFIED_CONFLICT);
      }
      const policy =
        options.propagationPolicy ?? (options.orphanDependents === true ? 'Orphan' : 'Background');
      const finalizers = finalizersOf(current);
      const next = clone(current);
      const nextMeta = next.metadata as JsonObject;
      const graceSeconds = this.podGraceSeconds(resource, current, options);
      if (meta.deletionTimestamp !== undefined) {
        const shortenGrace =
          graceSeconds !== undefined && graceSeconds < Number(meta.deletionGracePeriodSeconds ?? 0);
        if (finalizers.length === 0 && shortenGrace && graceSeconds === 0) {
          if (opts.dryRun) return { object: current, gone: true, warnings: admitted.warnings };
          const deleted = this.store.remove(key, ns, name)!;
          this.notifyWrite();
          return { object: deleted, gone: true, warnings: admitted.warnings };
        }
        return { object: current, gone: false, warnings: admitted.warnings };
      }
      if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER))
        finalizers.push(FOREGROUND_FINALIZER);
      if (policy === 'Orphan' && !finalizers.includes(ORPHAN_FINALIZER)) finalizers.push(ORPHAN_FINALIZER);
      const isNamespace = resource.group === '' && resource.plural === 'namespaces';
      const graceful = graceSeconds !== undefined && graceSeconds > 0;
      if (finalizers.length > 0 || graceful || isNamespace) {
        nextMeta.finalizers = finalizers.length > 0 ? finalizers : undefined;
        nextMeta.deletionTimestamp = kubeTimestamp(
          new Date(Date.now() + (graceful ? graceSeconds * 1000 : 0)),
        );
        nextMeta.deletionGracePeriodSeconds = graceful ? graceSeconds : 0;
        if (isNamespace)
          next.status = { ...(isObject(next.status) ? next.status : {}), phase: 'Terminating' };
        const cleaned = clone(next);
        if (opts.dryRun) return { object: cleaned, gone: false, warnings: admitted.warnings };
        const stored = this.store.put(key, cleaned);
        this.notifyWrite();
        return { object: stored, gone: false, warnings: admitted.warnings };
      }
      if (opts.dryRun) return { object: current, gone: true, warnings: admitted.warnings };
      const deleted = this.store.remove(key, ns, name)!;
      this.notifyWrite();
      return { object: deleted, gone: true, warnings: admitted.warnings };
    }
  }

  /** DELETE on a collection: deletes each listed object, returning what was deleted. */
  async deleteCollection(
    resource: ResourceType,
    namespace: string | undefined,
    query: ListQuery,
    options: DeleteOptions,
    opts: WriteOptions,
  ): Promise<JsonObject[]> {
    const page = this.listShared(resource, namespace, {
      ...query,
      limit: undefined,
      continueToken: undefined,
    });
    const deleted: JsonObject[] = [];
    for (const item of page.items) {
      const meta = item.metadata as JsonObject;
      try {
        const result = await this.delete(
          resource,
          String(meta.namespace ?? ''),
          String(meta.name),
          options,
          opts,
        );
        deleted.push(result.object);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    return deleted;
  }

  private podGraceSeconds(
    resource: ResourceType,
    current: JsonObject,
    options: DeleteOptions,
  ): number | undefined {
    if (!(resource.group === '' && resource.plural === 'pods')) return undefined;
    const spec = isObject(current.spec) ? current.spec : {};
    if (typeof spec.nodeName !== 'string' || spec.nodeName === '') return 0;
    const phase = isObject(current.status) ? current.status.phase : undefined;
    if (phase === 'Succeeded' || phase === 'Failed') return 0;
    if (typeof options.gracePeriodSeconds === 'number') return Math.max(0, options.gracePeriodSeconds);
    return typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
  }

  private async retrying(attempt: () => Promise<WriteResult>): Promise<WriteResult> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof StaleRead) || i >= MAX_RETRIES) {
          if (err instanceof StaleRead) throw err.conflict;
          throw err;
        }
      }
    }
  }

  private async commitUpdate(
    resource: ResourceType,
    namespace: string,
    current: JsonObject,
    candidate: JsonObject,
    opts: WriteOptions,
    subresource: 'status' | 'binding' | undefined,
    conditional: boolean,
  ): Promise<WriteResult> {
    const key = resourceKeyOf(resource);
    const oldMeta = current.metadata as JsonObject;
    const name = String(oldMeta.name);
    let next: JsonObject;
    if (subresource === 'status') {
      next = { ...clone(current), status: candidate.status };
      if (next.status === undefined) delete next.status;
      const managedFields = isObject(candidate.metadata) ? candidate.metadata.managedFields : undefined;
      if (managedFields !== undefined) (next.metadata as JsonObject).managedFields = managedFields;
    } else {
      next = candidate;
      next.apiVersion = apiVersionOf(resource);
      next.kind = resource.kind;
      // A binding writes spec.nodeName and the PodScheduled condition in one update, as upstream.
      if (resource.status && subresource !== 'binding') {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
    }
    const nextMeta = metaOf(next);
    const candidateMeta = metaOf(candidate);
    if (candidateMeta.uid !== undefined && candidateMeta.uid !== '' && candidateMeta.uid !== oldMeta.uid) {
      throw conflict(
        resource.plural,
        resource.group,
        name,
        `Precondition failed: UID in precondition: ${String(candidateMeta.uid)}, UID in object meta: ${String(oldMeta.uid)}`,
      );
    }
    this.keepSystemMetadata(nextMeta, oldMeta);
    if (resource.namespaced) nextMeta.namespace = namespace;
    if (oldMeta.deletionTimestamp !== undefined) {
      const added = finalizersOf(next).filter((f) => !finalizersOf(current).includes(f));
      if (added.length > 0) {
        throw invalid(resource.kind, resource.group, name, [
          {
            reason: 'FieldValueForbidden',
            field: 'metadata.finalizers',
            message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => `"${f}"`).join(', ')}}`,
          },
        ]);
      }
    }
    if (subresource !== 'status') {
      if (resource.group === '' && resource.plural === 'services') keepAllocatedServiceValues(next, current);
      applyDefaults(resource, next);
    } else if (resource.custom !== undefined) {
      applyDefaults(resource, next);
    }
    const admitted = await this.runAdmission(
      'UPDATE',
      resource,
      namespace,
      name,
      next,
      current,
      opts,
      subresource,
    );
    const final = admitted.object;
    this.keepSystemMetadata(metaOf(final), oldMeta);
    if (typeof oldMeta.generation === 'number') {
      metaOf(final).generation = jsonEqual(specPart(resource, final), specPart(resource, current))
        ? oldMeta.generation
        : oldMeta.generation + 1;
    }
    this.validate(resource, final, name);
    const updateCauses = validateUpdate(resource, final, current);
    if (updateCauses.length > 0) throw invalid(resource.kind, resource.group, name, updateCauses);
    if (this.store.get(key, resource.namespaced ? namespace : '', name) !== current) {
      if (conditional) throw conflict(resource.plural, resource.group, name, MODIFIED_CONFLICT);
      throw new StaleRead(resource, name);
    }
    const finalMeta = metaOf(final);
    if (finalMeta.finalizers !== undefined && finalizersOf(final).length === 0) delete finalMeta.finalizers;
    if (sameContent(final, current)) return { object: current, created: false, warnings: admitted.warnings };
    if (opts.dryRun) {
      finalMeta.resourceVersion = oldMeta.resourceVersion;
      return { object: final, created: false, warnings: admitted.warnings };
    }
    if (
      finalMeta.deletionTimestamp !== undefined &&
      finalizersOf(final).length === 0 &&
      !this.waitsForGrace(resource, final)
    ) {
      const deleted = this.store.remove(key, resource.namespaced ? namespace : '', name)!;
      this.notifyWrite();
      return { object: deleted, created: false, warnings: admitted.warnings };
    }
    const stored = this.store.put(key, final);
    this.notifyWrite();
    return { object: stored, created: false, warnings: admitted.warnings };
  }

  /** Graceful pod deletions and terminating namespaces stay after their finalizers are gone. */
  private waitsForGrace(resource: ResourceType, object: JsonObject): boolean {
    if (resource.group !== '') return false;
    if (resource.plural === 'namespaces') return true;
    return (
      resource.plural === 'pods' &&
      Number((object.metadata as JsonObject).deletionGracePeriodSeconds ?? 0) > 0
    );
  }

  private keepSystemMetadata(meta: JsonObject, oldMeta: JsonObject): void {
    for (const field of [
      'uid',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'generation',
      'name',
    ]) {
      if (oldMeta[field] === undefined) delete meta[field];
      else meta[field] = oldMeta[field];
    }
    if (meta.managedFields === undefined && oldMeta.managedFields !== undefined)
      meta.managedFields = oldMeta.managedFields;
    delete meta.resourceVersion;
    delete meta.generateName;
    if (oldMeta.generateName !== undefined) meta.generateName = oldMeta.generateName;
  }

  /** Admission may not change what the server assigned on create. */
  private restoreCreateInvariants(object: JsonObject, assigned: JsonObject): void {
    const meta = metaOf(object);
    for (const field of ['uid', 'creationTimestamp', 'generation', 'name']) {
      if (assigned[field] === undefined) delete meta[field];
      else meta[field] = assigned[field];
    }
    delete meta.resourceVersion;
  }

  private checkBody(resource: ResourceType, namespace: string, body: unknown): JsonObject {
    if (!isObject(body)) throw badRequest('the body of the request was not a JSON object');
    const object = clone(body);
    const expectedVersion = apiVersionOf(resource);
    if (object.apiVersion !== undefined && object.apiVersion !== expectedVersion) {
      throw badRequest(
        `the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${expectedVersion})`,
      );
    }
    if (object.kind !== undefined && object.kind !== resource.kind) {
      throw badRequest(
        `the kind in the data (${String(object.kind)}) does not match the expected kind (${resource.kind})`,
      );
    }
    object.apiVersion = expectedVersion;
    object.kind = resource.kind;
    const meta = metaOf(object);
    if (resource.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    return object;
  }

  private checkNamespaceAcceptsContent(resource: ResourceType, namespace: string, name: string): void {
    if (!resource.namespaced) return;
    const ns = this.store.get('/namespaces', '', namespace);
    if (!ns) throw notFound('namespaces', '', namespace);
    if ((ns.metadata as JsonObject).deletionTimestamp !== undefined) {
      throw forbidden(
        resource.plural,
        resource.group,
        name,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  private prepareStatusForCreate(resource: ResourceType, object: JsonObject): void {
    if (resource.group === '' && resource.plural === 'namespaces') {
      object.status = { phase: 'Active' };
      object.spec = { finalizers: ['kubernetes'] };
      return;
    }
    if (resource.group === '' && resource.plural === 'pods') {
      object.status = { phase: 'Pending', qosClass: podQosClass(object.spec) };
      return;
    }
    if (resource.group === '' && resource.plural === 'services') {
      object.status = { loadBalancer: {} };
      return;
    }
    if (resource.group === '' && resource.plural === 'nodes') return;
    if (resource.status) delete object.status;
  }

  private validate(resource: ResourceType, object: JsonObject, name: string): void {
    const causes = [...validateMetadata(resource, object), ...validateObject(resource, object)];
    if (causes.length > 0) throw invalid(resource.kind, resource.group, name, causes);
  }

  private async runAdmission(
    operation: 'CREATE' | 'UPDATE' | 'DELETE',
    resource: ResourceType,
    namespace: string,
    name: string,
    object: JsonObject | undefined,
    oldObject: JsonObject | undefined,
    opts: WriteOptions,
    subresource?: string,
  ): Promise<{ object: JsonObject; warnings: string[] }> {
    const passThrough = { object: object ?? {}, warnings: [] };
    if (this.admit === undefined) return passThrough;
    const mutating = this.store.list('admissionregistration.k8s.io/mutatingwebhookconfigurations');
    const validating = this.store.list('admissionregistration.k8s.io/validatingwebhookconfigurations');
    if (mutating.length === 0 && validating.length === 0) return passThrough;
    const attrs: AdmissionAttributes = {
      operation,
      resource,
      name,
      dryRun: opts.dryRun,
      userInfo: opts.user,
    };
    if (subresource !== undefined) attrs.subResource = subresource;
    if (resource.namespaced) attrs.namespace = namespace;
    if (object !== undefined) attrs.object = object;
    if (oldObject !== undefined) attrs.oldObject = oldObject;
    const outcome = await this.admit(
      attrs,
      { mutating, validating },
      {
        namespaceLabels: (ns) => {
          const found = this.store.get('/namespaces', '', ns);
          const labels = found ? (found.metadata as JsonObject).labels : undefined;
          return isObject(labels) ? (labels as Record<string, string>) : found ? {} : undefined;
        },
      },
    );
    if (!outcome.allowed) throw new ApiError(outcome.code, outcome.reason, outcome.message, outcome.details);
    const admitted =
      outcome.object !== undefined && isObject(outcome.object) ? clone(outcome.object) : passThrough.object;
    return { object: admitted, warnings: outcome.warnings ?? [] };
  }

  private notifyWrite(): void {
    for (const callback of this.afterWrite) callback();
  }
}
