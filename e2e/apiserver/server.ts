/**
 * The HTTPS front of the API server: authentication, routing of Kubernetes REST paths to the
 * registry, content negotiation (JSON, Table), patches, watch streaming and injected faults.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { applyServerSide } from './apply.ts';
import { type ResourceCatalog, resourceKeyOf } from './catalog.ts';
import {
  apiGroupDocument,
  apiGroupListDocument,
  apiResourceListDocument,
  apiVersionsDocument,
} from './discovery.ts';
import {
  ApiError,
  badRequest,
  methodNotSupported,
  pathNotFound,
  statusBody,
  unauthorized,
  unsupportedMediaType,
} from './errors.ts';
import type { FaultInjector } from './faults.ts';
import { parseFieldValidation } from './field-validation.ts';
import { OPENAPI_V2_PROTOBUF, openApiV2Json, openApiV2Protobuf } from './openapi-v2.ts';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  isObject,
  type JsonObject,
} from './patch.ts';
import { decodeKubernetesProtobuf, UnsupportedProtobuf } from './protobuf.ts';
import type {
  DeleteOptions,
  ListQuery,
  Registry,
  RequestUser,
  WriteOptions,
  WriteResult,
} from './registry.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import { type ObjectPredicate, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { StoreEvent, WatchEventType } from './store.ts';

/** tables.ts `toTable`. */
export type TableConverter = (
  resource: ResourceType,
  objects: readonly object[],
  opts: { includeObject: 'None' | 'Object' | 'Metadata'; resourceVersion: string; continue?: string },
) => object;

/** openapi.ts exports. */
export interface OpenApiProvider {
  index(resources: readonly ResourceType[]): object;
  document(resources: readonly ResourceType[], group: string, version: string): object | undefined;
}

/** What the request handler needs. */
export interface ServerContext {
  registry: Registry;
  catalog: ResourceCatalog;
  faults: FaultInjector;
  token: string;
  serverAddress: () => string;
  toTable: TableConverter | undefined;
  openApi: OpenApiProvider | undefined;
  bookmarkIntervalMs: number;
  /** Upper bound of a watch without timeoutSeconds, like kube-apiserver's min-request-timeout. */
  maxWatchSeconds: number;
}

/** The user every authenticated request acts as (authorization is all-or-nothing). */
const ADMIN_USER: RequestUser = {
  username: 'portico-admin',
  groups: ['system:masters', 'system:authenticated'],
};

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);
const JSON_TYPES = ['application/json', 'application/yaml'];
const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

/** A request to a resource path, parsed. */
interface ResourceRequest {
  resource: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

/** One open watch response. */
interface ActiveWatch {
  close(): void;
  flush(): void;
}

/**
 * JSON of objects as the store holds them, encoded once per write: the answer to the write and the
 * watch events of that write send the same text. Stored objects are never modified in place.
 */
const STORED_OBJECT_JSON = new WeakMap<JsonObject, string>();

function storedObjectJson(object: JsonObject): string {
  let text = STORED_OBJECT_JSON.get(object);
  if (text === undefined) {
    text = JSON.stringify(object);
    STORED_OBJECT_JSON.set(object, text);
  }
  return text;
}

function sendText(res: ServerResponse, code: number, text: string, headers?: Record<string, string>): void {
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]!);
  res.writeHead(code);
  res.end(text);
}

function sendJson(res: ServerResponse, code: number, body: unknown, headers?: Record<string, string>): void {
  sendText(res, code, JSON.stringify(body), headers);
}

/** Lists up to this many characters go out as one string with a Content-Length; longer ones in chunks. */
const LIST_CHUNK_CHARS = 1 << 20;

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Answers a list: the same bytes as `JSON.stringify({ ...envelope, items })`, assembled from each
 * item's cached encoding, so a list of objects that were written or listed before costs no
 * serialisation. A large list is written in chunks with backpressure (chunked transfer encoding)
 * rather than as one string, which for 100,000 pods would be some 300 MB and near V8's limit on
 * string length.
 */
async function sendList(
  res: ServerResponse,
  envelope: JsonObject,
  items: readonly JsonObject[],
): Promise<void> {
  const head = JSON.stringify(envelope);
  let chunk = `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"items":[`;
  let streaming = false;
  for (let n = 0; n < items.length; n++) {
    chunk += n === 0 ? storedObjectJson(items[n]!) : `,${storedObjectJson(items[n]!)}`;
    if (chunk.length < LIST_CHUNK_CHARS) continue;
    if (!streaming) {
      streaming = true;
      res.setHeader('Content-Type', 'application/json');
      res.writeHead(200);
    }
    const flowing = res.write(chunk);
    chunk = '';
    if (!flowing) await drainedOrClosed(res);
    if (res.destroyed) return;
  }
  chunk += ']}';
  if (streaming) res.end(chunk);
  else sendText(res, 200, chunk);
}

/** Answers a write with the object it stored, encoding it once for the answer and for watchers. */
function sendWritten(
  res: ServerResponse,
  code: number,
  object: JsonObject,
  headers?: Record<string, string>,
): void {
  sendText(res, code, storedObjectJson(object), headers);
}

/** A request's path and query, split without building a URL object (the hot path of every request). */
interface RequestTarget {
  pathname: string;
  searchParams: URLSearchParams;
}

function requestTarget(rawUrl: string): RequestTarget {
  if (!rawUrl.startsWith('/')) {
    const url = new URL(rawUrl, 'https://127.0.0.1');
    return { pathname: url.pathname, searchParams: url.searchParams };
  }
  const query = rawUrl.indexOf('?');
  if (query < 0) return { pathname: rawUrl, searchParams: new URLSearchParams() };
  return { pathname: rawUrl.slice(0, query), searchParams: new URLSearchParams(rawUrl.slice(query + 1)) };
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof ApiError) {
    sendJson(res, err.code, err.toStatus(), err.headers);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  sendJson(res, 500, statusBody(500, 'InternalError', `Internal error occurred: ${message}`));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decodeProtobuf(raw: Buffer): unknown {
  try {
    return decodeKubernetesProtobuf(raw);
  } catch (err) {
    if (err instanceof UnsupportedProtobuf)
      throw unsupportedMediaType(`${PROTOBUF} (${err.message})`, JSON_TYPES);
    throw badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function parseBody(buffer: Buffer, type: string): unknown {
  const text = buffer.toString('utf8');
  try {
    if (type.endsWith('yaml')) return text.trim() === '' ? undefined : parseYaml(text);
    return JSON.parse(text);
  } catch (err) {
    // A blank body is no body; checked only on failure, as bodies are almost never blank.
    if (text.trim() === '') return undefined;
    throw badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

/**
 * The representation the Accept header asks for, first match wins: a meta.k8s.io Table (kubectl get),
 * PartialObjectMetadata (metadata-only clients), or the object itself.
 */
function negotiate(req: IncomingMessage, tablesServed: boolean): 'table' | 'metadata' | 'object' {
  for (const part of (req.headers.accept ?? '').split(',')) {
    const meta = part.includes('g=meta.k8s.io');
    if (meta && tablesServed && part.includes('as=Table')) return 'table';
    if (meta && /as=PartialObjectMetadata(List)?\b/.test(part)) return 'metadata';
    if (!part.includes('as=')) return 'object';
  }
  return 'object';
}

/** The meta.k8s.io/v1 PartialObjectMetadata of an object. */
function partialMetadata(object: JsonObject): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

function intParam(params: URLSearchParams, name: string): number | undefined {
  const value = params.get(name);
  if (value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw badRequest(`${name}: Invalid value: "${value}": must be an integer`);
  return n;
}

function boolParam(params: URLSearchParams, name: string): boolean {
  const value = params.get(name);
  return value === 'true' || value === '1';
}

function writeOptions(params: URLSearchParams): WriteOptions {
  const dryRun = params.getAll('dryRun');
  for (const d of dryRun) {
    if (d !== 'All') throw badRequest(`dryRun: Unsupported value: "${d}": supported values: "All"`);
  }
  const opts: WriteOptions = {
    dryRun: dryRun.length > 0,
    user: ADMIN_USER,
    fieldValidation: parseFieldValidation(params.get('fieldValidation')),
  };
  const manager = params.get('fieldManager');
  if (manager !== null && manager !== '') opts.fieldManager = manager;
  return opts;
}

function warningHeaders(warnings: readonly string[]): Record<string, string> | undefined {
  if (warnings.length === 0) return undefined;
  return { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') };
}

function listKind(resource: ResourceType): string {
  return `${resource.kind}List`;
}

/** The autoscaling/v1 Scale view of a Deployment or ReplicaSet. */
function scaleOf(object: JsonObject): JsonObject {
  const meta = object.metadata as JsonObject;
  const spec = isObject(object.spec) ? object.spec : {};
  const status = isObject(object.status) ? object.status : {};
  const selector =
    isObject(spec.selector) && isObject(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
      creationTimestamp: meta.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 0 },
    status: {
      replicas: status.replicas ?? 0,
      selector: Object.entries(selector)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(','),
    },
  };
}

/** Kinds whose immediate DELETE answers with the deleted object; the others answer with a Success Status. */
const RETURNS_DELETED_OBJECT = new Set(['pods', 'services', 'serviceaccounts']);

function returnsDeletedObject(resource: ResourceType): boolean {
  return resource.group === '' && RETURNS_DELETED_OBJECT.has(resource.plural);
}

/** The Success Status kube-apiserver answers an immediate DELETE with. */
function deletedStatus(resource: ResourceType, object: JsonObject): JsonObject {
  const meta = object.metadata as JsonObject;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { name: meta.name, group: resource.group, kind: resource.plural, uid: meta.uid },
  };
}

/**
 * Wire lines of store events in their plain JSON form, encoded once and written as the same bytes
 * to every watcher of every server.
 */
const SHARED_EVENT_LINES = new WeakMap<StoreEvent, Buffer>();

/** Builds the request handler of one server. */
export function createRequestHandler(ctx: ServerContext): {
  handle(req: IncomingMessage, res: ServerResponse): void;
  dropWatches(): void;
  flushWatches(): void;
} {
  const watches = new Set<ActiveWatch>();

  function resolveResource(url: RequestTarget): ResourceRequest | undefined {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 3) {
      group = '';
      version = parts[1]!;
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 4) {
      group = parts[1]!;
      version = parts[2]!;
      rest = parts.slice(3);
    } else {
      return undefined;
    }
    try {
      rest = rest.map(decodeURIComponent);
    } catch {
      return undefined;
    }
    let namespace: string | undefined;
    let plural: string;
    let name: string | undefined;
    let subresource: string | undefined;
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      !(group === '' && ['status', 'finalize'].includes(rest[2]!) && rest.length === 3)
    ) {
      namespace = rest[1];
      plural = rest[2]!;
      name = rest[3];
      subresource = rest[4];
      if (rest.length > 5) return undefined;
    } else {
      plural = rest[0]!;
      name = rest[1];
      subresource = rest[2];
      if (rest.length > 3) return undefined;
    }
    const resource = ctx.catalog.find(group, version, plural);
    if (!resource) return undefined;
    if (namespace !== undefined && !resource.namespaced) return undefined;
    if (resource.namespaced && namespace === undefined && name !== undefined) return undefined;
    return { resource, namespace, name, subresource };
  }

  function listQuery(params: URLSearchParams, resource: ResourceType): ListQuery {
    const query: ListQuery = {};
    const label = parseLabelSelector(params.get('labelSelector') ?? undefined);
    const field = parseFieldSelector(params.get('fieldSelector') ?? undefined, resource.plural);
    if (label) query.label = label;
    if (field) query.field = field;
    const limit = intParam(params, 'limit');
    if (limit !== undefined) query.limit = limit;
    const token = params.get('continue');
    if (token !== null) query.continueToken = token;
    return query;
  }

  function tableOrObject(
    req: IncomingMessage,
    resource: ResourceType,
    objects: JsonObject[],
    resourceVersion: string,
    continueToken?: string,
  ): object | undefined {
    if (negotiate(req, ctx.toTable !== undefined) !== 'table' || ctx.toTable === undefined) return undefined;
    const params = requestTarget(req.url ?? '/').searchParams;
    const include = params.get('includeObject');
    const opts: Parameters<TableConverter>[2] = {
      includeObject: include === 'None' || include === 'Object' ? include : 'Metadata',
      resourceVersion,
    };
    if (continueToken !== undefined) opts.continue = continueToken;
    return ctx.toTable(resource, objects, opts);
  }

  function serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
    params: URLSearchParams,
  ): void {
    const { resource } = r;
    const label = parseLabelSelector(params.get('labelSelector') ?? undefined);
    const fieldSel = parseFieldSelector(params.get('fieldSelector') ?? undefined, resource.plural);
    let nameFilter: ObjectPredicate | undefined;
    if (r.name !== undefined) {
      const only = r.name;
      nameFilter = (o) => (o.metadata as JsonObject).name === only;
    }
    const matches = (o: JsonObject | undefined): boolean =>
      o !== undefined && (!label || label(o)) && (!fieldSel || fieldSel(o)) && (!nameFilter || nameFilter(o));
    const rvParam = params.get('resourceVersion') ?? '';
    const initialEventsRequested = params.get('sendInitialEvents') === 'true';
    // Both stream the current state as ADDED events and then changes from now on.
    const sendInitial = initialEventsRequested || rvParam === '0';
    const bookmarks = boolParam(params, 'allowWatchBookmarks');
    const timeoutSeconds = intParam(params, 'timeoutSeconds');
    const representation = negotiate(req, ctx.toTable !== undefined);
    const table = representation === 'table';
    const metadataOnly = representation === 'metadata';
    let fromRevision: number | undefined;
    if (rvParam !== '' && !sendInitial) {
      fromRevision = Number(rvParam);
      if (!Number.isInteger(fromRevision) || fromRevision < 0)
        throw badRequest(`resourceVersion: Invalid value: "${rvParam}": must be an integer`);
    }
    const ns = resource.namespaced ? r.namespace : undefined;
    const view = ctx.registry.viewOf(resource);
    const key = resourceKeyOf(view?.storage ?? resource);
    const shown = (object: JsonObject): JsonObject => (view ? view.fromStored(object) : object);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache',
    });
    res.flushHeaders();
    const held: Array<string | Buffer> = [];
    let closed = false;
    // Watchers of the plain JSON form share one encoding per event; tables and converted views
    // (events.k8s.io) are encoded per watcher.
    const serialized = table || metadataOnly || view ? new WeakMap<StoreEvent, Buffer>() : SHARED_EVENT_LINES;
    const write = (line: string | Buffer): void => {
      if (closed) return;
      if (ctx.faults.paused) held.push(line);
      else res.write(line);
    };
    const encode = (type: WatchEventType | 'BOOKMARK', stored: JsonObject): string => {
      const object = shown(stored);
      if (metadataOnly && type !== 'BOOKMARK') {
        return `{"type":"${type}","object":${JSON.stringify(partialMetadata(object))}}\n`;
      }
      if (table && type !== 'BOOKMARK') {
        const converted = ctx.toTable!(resource, [object], {
          includeObject: 'Object',
          resourceVersion: String((object.metadata as JsonObject).resourceVersion),
        });
        return `{"type":"${type}","object":${JSON.stringify(converted)}}\n`;
      }
      return `{"type":"${type}","object":${object === stored ? storedObjectJson(stored) : JSON.stringify(object)}}\n`;
    };
    const sharedLine = (event: StoreEvent): Buffer => {
      let line = serialized.get(event);
      if (line === undefined) {
        line = Buffer.from(encode(event.type, event.object));
        serialized.set(event, line);
      }
      return line;
    };
    const deliver = (event: StoreEvent): void => {
      const now = matches(event.object);
      const before = event.type === 'MODIFIED' && matches(event.previous);
      if (event.type === 'MODIFIED') {
        if (now && before) write(sharedLine(event));
        else if (now) write(encode('ADDED', event.object));
        else if (before) write(encode('DELETED', event.object));
        return;
      }
      if (now) write(sharedLine(event));
    };
    const bookmark = (annotations?: Record<string, string>): void => {
      const metadata: JsonObject = { resourceVersion: String(ctx.registry.store.currentRevision()) };
      if (annotations) metadata.annotations = annotations;
      write(
        `{"type":"BOOKMARK","object":${JSON.stringify({ kind: resource.kind, apiVersion: apiVersionOf(resource), metadata })}}\n`,
      );
    };
    let unsubscribe: () => void = () => {};
    const timers: NodeJS.Timeout[] = [];
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      watches.delete(active);
      res.end();
    };
    const active: ActiveWatch = {
      close,
      flush: () => {
        while (held.length > 0 && !closed) res.write(held.shift()!);
      },
    };
    watches.add(active);
    req.on('close', close);
    res.on('error', close);
    try {
      if (sendInitial) {
        for (const object of ctx.registry.store.list(key, ns)) {
          if (matches(object)) write(encode('ADDED', object));
        }
        if (bookmarks && initialEventsRequested) bookmark({ 'k8s.io/initial-events-end': 'true' });
      }
      unsubscribe = ctx.registry.store.watch({ resourceKey: key, namespace: ns, deliver }, fromRevision);
    } catch (err) {
      if (err instanceof ApiError && err.code === 410) {
        write(`{"type":"ERROR","object":${JSON.stringify(statusBody(410, 'Expired', err.message))}}\n`);
        close();
        return;
      }
      throw err;
    }
    const seconds = timeoutSeconds !== undefined && timeoutSeconds > 0 ? timeoutSeconds : ctx.maxWatchSeconds;
    timers.push(setTimeout(close, seconds * 1000));
    if (bookmarks) {
      const tick = (): void => {
        if (closed) return;
        bookmark();
        timers.push(setTimeout(tick, ctx.bookmarkIntervalMs));
      };
      timers.push(setTimeout(tick, ctx.bookmarkIntervalMs));
    }
  }

  async function applyPatch(
    r: ResourceRequest,
    name: string,
    namespace: string,
    type: string,
    body: unknown,
    params: URLSearchParams,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const { resource } = r;
    const status = r.subresource === 'status' ? 'status' : undefined;
    if (type === 'application/apply-patch+yaml') {
      const manager = opts.fieldManager;
      if (manager === undefined)
        throw badRequest(
          'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        );
      if (!isObject(body)) throw badRequest('the body of an apply patch must be a single object');
      const force = boolParam(params, 'force');
      const exists = ctx.registry.exists(resource, namespace, name);
      if (!exists && status === undefined) {
        const created = applyServerSide(resource, undefined, body, manager, force);
        const result = await ctx.registry.create(resource, namespace, created, opts);
        return result;
      }
      return ctx.registry.mutate(
        resource,
        namespace,
        name,
        (current) => applyServerSide(resource, current, body, manager, force, status),
        opts,
        status,
      );
    }
    const mutateFn = (current: JsonObject): JsonObject => {
      try {
        switch (type) {
          case 'application/json-patch+json':
            return applyJsonPatch(current, body) as JsonObject;
          case 'application/merge-patch+json':
            return applyMergePatch(current, body) as JsonObject;
          default:
            return applyStrategicMergePatch(current, body) as JsonObject;
        }
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new ApiError(422, 'Invalid', (err as Error).message);
      }
    };
    return ctx.registry.mutate(resource, namespace, name, mutateFn, opts, status);
  }

  async function serveScale(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
    name: string,
    namespace: string,
    body: unknown,
    params: URLSearchParams,
  ): Promise<void> {
    const { resource } = r;
    if (req.method === 'GET') {
      sendJson(res, 200, scaleOf(ctx.registry.readShared(resource, namespace, name)));
      return;
    }
    const opts = writeOptions(params);
    const type = mediaType(req);
    const replicasFrom = (scale: unknown): number => {
      const replicas = isObject(scale) && isObject(scale.spec) ? scale.spec.replicas : undefined;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        throw new ApiError(
          422,
          'Invalid',
          `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        );
      }
      return replicas;
    };
    const result = await ctx.registry.mutate(
      resource,
      namespace,
      name,
      (current) => {
        const scale = scaleOf(current);
        let next: unknown;
        if (req.method === 'PUT') {
          next = body;
          const rv = isObject(body) && isObject(body.metadata) ? body.metadata.resourceVersion : undefined;
          if (typeof rv === 'string' && rv !== '') (current.metadata as JsonObject).resourceVersion = rv;
        } else if (type === 'application/json-patch+json') next = applyJsonPatch(scale, body);
        else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json')
          next = applyMergePatch(scale, body);
        else throw unsupportedMediaType(type, PATCH_TYPES.slice(0, 3));
        const spec = isObject(current.spec) ? current.spec : {};
        spec.replicas = replicasFrom(next);
        current.spec = spec;
        return current;
      },
      opts,
    );
    sendJson(res, 200, scaleOf(result.object), warningHeaders(result.warnings));
  }

  async function serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    url: RequestTarget,
    r: ResourceRequest,
  ): Promise<void> {
    const { resource } = r;
    const params = url.searchParams;
    const method = req.method ?? 'GET';
    const namespace = resource.namespaced ? (r.namespace ?? '') : '';
    const binding = r.subresource === 'binding' && resource.group === '' && resource.plural === 'pods';
    if (binding) {
      if (r.name === undefined) throw pathNotFound();
      if (method !== 'POST') throw methodNotSupported('pods/binding', '', method);
    } else if (r.subresource !== undefined) {
      const served =
        (r.subresource === 'status' && resource.status) || (r.subresource === 'scale' && resource.scale);
      if (!served || r.name === undefined) throw pathNotFound();
      if (!['GET', 'PUT', 'PATCH'].includes(method))
        throw methodNotSupported(resource.plural, resource.group, method);
    }
    let body: unknown;
    if (method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE') {
      const raw = await readBody(req);
      const type = mediaType(req);
      if (raw.length > 0) {
        if (method === 'PATCH') {
          if (!PATCH_TYPES.includes(type)) throw unsupportedMediaType(type, PATCH_TYPES);
          if (type === 'application/strategic-merge-patch+json' && resource.custom !== undefined) {
            throw unsupportedMediaType(
              type,
              PATCH_TYPES.filter((t) => !t.includes('strategic')),
            );
          }
          body = parseBody(raw, type);
        } else if (type === PROTOBUF) {
          body = decodeProtobuf(raw);
        } else if (type !== '' && !JSON_TYPES.includes(type)) {
          throw unsupportedMediaType(type, JSON_TYPES);
        } else {
          body = parseBody(raw, type);
        }
      }
    }
    if (binding) {
      await ctx.registry.bind(resource, namespace, r.name!, body, writeOptions(params));
      sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    if (r.subresource === 'scale') {
      await serveScale(req, res, r, r.name!, namespace, body, params);
      return;
    }
    const name = r.name;
    switch (method) {
      case 'GET': {
        if (boolParam(params, 'watch')) {
          serveWatch(req, res, r, params);
          return;
        }
        if (name !== undefined) {
          const object = ctx.registry.readShared(resource, namespace, name);
          const table = tableOrObject(
            req,
            resource,
            [object],
            String((object.metadata as JsonObject).resourceVersion),
          );
          const metadataOnly = negotiate(req, ctx.toTable !== undefined) === 'metadata';
          sendJson(res, 200, table ?? (metadataOnly ? partialMetadata(object) : object));
          return;
        }
        const page = ctx.registry.listShared(resource, r.namespace, listQuery(params, resource));
        const table = tableOrObject(req, resource, page.items, page.resourceVersion, page.continueToken);
        if (table) {
          sendJson(res, 200, table);
          return;
        }
        const metadata: JsonObject = { resourceVersion: page.resourceVersion };
        if (page.continueToken !== undefined) {
          metadata.continue = page.continueToken;
          metadata.remainingItemCount = page.remainingItemCount;
        }
        if (negotiate(req, ctx.toTable !== undefined) === 'metadata') {
          sendJson(res, 200, {
            kind: 'PartialObjectMetadataList',
            apiVersion: 'meta.k8s.io/v1',
            metadata,
            items: page.items.map(partialMetadata),
          });
          return;
        }
        await sendList(
          res,
          { kind: listKind(resource), apiVersion: apiVersionOf(resource), metadata },
          page.items,
        );
        return;
      }
      case 'POST': {
        if (name !== undefined) throw methodNotSupported(resource.plural, resource.group, 'create');
        if (resource.namespaced && r.namespace === undefined)
          throw methodNotSupported(resource.plural, resource.group, 'create');
        const result = await ctx.registry.create(resource, namespace, body, writeOptions(params));
        sendWritten(res, 201, result.object, warningHeaders(result.warnings));
        return;
      }
      case 'PUT': {
        if (name === undefined) throw methodNotSupported(resource.plural, resource.group, 'update');
        const status = r.subresource === 'status' ? 'status' : undefined;
        const result = await ctx.registry.update(
          resource,
          namespace,
          name,
          body,
          writeOptions(params),
          status,
        );
        sendWritten(res, 200, result.object, warningHeaders(result.warnings));
        return;
      }
      case 'PATCH': {
        if (name === undefined) throw methodNotSupported(resource.plural, resource.group, 'patch');
        if (body === undefined) throw badRequest('the body of the request was empty');
        const result = await applyPatch(
          r,
          name,
          namespace,
          mediaType(req),
          body,
          params,
          writeOptions(params),
        );
        sendWritten(res, result.created ? 201 : 200, result.object, warningHeaders(result.warnings));
        return;
      }
      case 'DELETE': {
        const options = deleteOptions(body, params);
        if (name === undefined) {
          if (resource.namespaced && r.namespace === undefined)
            throw methodNotSupported(resource.plural, resource.group, 'deletecollection');
          const deleted = await ctx.registry.deleteCollection(
            resource,
            r.namespace,
            listQuery(params, resource),
            options,
            writeOptions(params),
          );
          sendJson(res, 200, {
            kind: listKind(resource),
            apiVersion: apiVersionOf(resource),
            metadata: { resourceVersion: String(ctx.registry.store.currentRevision()) },
            items: deleted,
          });
          return;
        }
        const result = await ctx.registry.delete(resource, namespace, name, options, writeOptions(params));
        const answer =
          result.gone && !returnsDeletedObject(resource)
            ? deletedStatus(resource, result.object)
            : result.object;
        sendJson(res, result.gone ? 200 : 202, answer, warningHeaders(result.warnings));
        return;
      }
      default:
        throw methodNotSupported(resource.plural, resource.group, method);
    }
  }

  function deleteOptions(body: unknown, params: URLSearchParams): DeleteOptions {
    const options: DeleteOptions = {};
    const source = isObject(body) ? body : {};
    const grace = source.gracePeriodSeconds ?? intParam(params, 'gracePeriodSeconds');
    if (typeof grace === 'number') options.gracePeriodSeconds = grace;
    const policy = source.propagationPolicy ?? params.get('propagationPolicy') ?? undefined;
    if (policy !== undefined && policy !== null) {
      if (policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
        throw badRequest(
          `propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Background", "Foreground", "Orphan"`,
        );
      }
      options.propagationPolicy = policy;
    }
    const orphan =
      source.orphanDependents ??
      (params.has('orphanDependents') ? boolParam(params, 'orphanDependents') : undefined);
    if (typeof orphan === 'boolean') options.orphanDependents = orphan;
    if (isObject(source.preconditions))
      options.preconditions = source.preconditions as DeleteOptions['preconditions'];
    if (isObject(body) && Array.isArray(body.dryRun) && body.dryRun.includes('All'))
      params.append('dryRun', 'All');
    return options;
  }

  function serveNonResource(req: IncomingMessage, res: ServerResponse, url: RequestTarget): boolean {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const resources = ctx.catalog.all();
    if (
      path === '/healthz' ||
      path === '/livez' ||
      path === '/readyz' ||
      /^\/(healthz|livez|readyz)\/.+/.test(path)
    ) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return true;
    }
    if (path === '/version') {
      sendJson(res, 200, {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0-portico',
        gitCommit: 'portico',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.23',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
      return true;
    }
    if (path === '/api') {
      sendJson(res, 200, apiVersionsDocument(ctx.serverAddress()));
      return true;
    }
    if (path === '/apis') {
      sendJson(res, 200, apiGroupListDocument(resources));
      return true;
    }
    const parts = path.split('/').filter((p) => p !== '');
    if (parts[0] === 'api' && parts.length === 2) {
      const doc = apiResourceListDocument(resources, '', parts[1]!);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, doc);
      return true;
    }
    if (parts[0] === 'apis' && parts.length === 2) {
      const doc = apiGroupDocument(resources, parts[1]!);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, doc);
      return true;
    }
    if (parts[0] === 'apis' && parts.length === 3) {
      const doc = apiResourceListDocument(resources, parts[1]!, parts[2]!);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, doc);
      return true;
    }
    if (path === '/openapi/v2') {
      if ((req.headers.accept ?? '').includes('protobuf')) {
        const document = openApiV2Protobuf();
        res.writeHead(200, {
          'Content-Type': OPENAPI_V2_PROTOBUF.replace('@', '.'),
          'Content-Length': document.length,
        });
        res.end(document);
      } else sendJson(res, 200, openApiV2Json());
      return true;
    }
    if (parts[0] === 'openapi' && parts[1] === 'v3') {
      if (!ctx.openApi) throw pathNotFound();
      if (parts.length === 2) {
        sendJson(res, 200, ctx.openApi.index(resources));
        return true;
      }
      const group = parts[2] === 'api' ? '' : (parts[3] ?? '');
      const version = parts[2] === 'api' ? (parts[3] ?? '') : (parts[4] ?? '');
      const doc = ctx.openApi.document(resources, group, version);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, doc);
      return true;
    }
    return false;
  }

  async function handleAsync(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestTarget(req.url ?? '/');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (!PUBLIC_PATHS.has(path) && req.headers.authorization !== `Bearer ${ctx.token}`) throw unauthorized();
    const resourceRequest = resolveResource(url);
    if (!resourceRequest) {
      if (!serveNonResource(req, res, url)) throw pathNotFound();
      return;
    }
    const failure = await ctx.faults.beforeRequest();
    if (failure) {
      if (failure.code === 429) {
        const seconds = failure.retryAfterSeconds ?? 1;
        throw new ApiError(
          429,
          'TooManyRequests',
          'Too many requests, please try again later.',
          { retryAfterSeconds: seconds },
          { 'Retry-After': String(seconds) },
        );
      }
      throw new ApiError(500, 'InternalError', 'Internal error occurred: injected fault');
    }
    await serveResource(req, res, url, resourceRequest);
  }

  return {
    handle(req, res) {
      handleAsync(req, res).catch((err: unknown) => sendError(res, err));
    },
    dropWatches() {
      for (const w of [...watches]) w.close();
    },
    flushWatches() {
      for (const w of watches) w.flush();
    },
  };
}
