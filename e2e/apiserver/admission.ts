/**
 * Dynamic admission for the local API server: calls the webhooks of the stored
 * MutatingWebhookConfigurations and ValidatingWebhookConfigurations the way kube-apiserver does.
 *
 * - Mutating webhooks run one after another (configurations sorted by name, then webhook order);
 *   each sees the object as the previous one left it (JSONPatch responses applied). Validating
 *   webhooks then run in parallel on the final object; the first denial in webhook order wins.
 * - A webhook is called when a rule matches (operations, apiGroups, apiVersions, resources with `*`
 *   and `resource/subresource`, scope) and both namespaceSelector and objectSelector match.
 *   matchConditions (CEL) are not evaluated: a webhook that declares them is called as if they held.
 * - Calls are HTTPS POSTs of an admission.k8s.io/v1 AdmissionReview, verifying the webhook's
 *   certificate against its caBundle, bounded by timeoutSeconds (default 10). A failed call (refused,
 *   timed out, bad TLS, malformed response) rejects the request with 500 under failurePolicy Fail
 *   (the default) and is skipped under Ignore.
 * - With dry run, a webhook whose sideEffects is neither None nor NoneOnDryRun is not called and the
 *   request is rejected (400), whatever its failurePolicy, as upstream.
 */

import { randomUUID } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { applyJsonPatch, isObject, type JsonObject } from './patch.ts';
import type { AdmissionAttributes, AdmissionOutcome } from './registry.ts';

/** What admission may look up in the server while it decides. */
export interface AdmissionLookups {
  /** Labels of a namespace, undefined when it does not exist. */
  namespaceLabels(ns: string): Record<string, string> | undefined;
  /**
   * Where a webhook's `clientConfig.service` is reachable, as `https://host:port`, or undefined when
   * the server cannot reach it. The webhook's certificate is still verified for the service's DNS
   * name `<name>.<namespace>.svc`, as kube-apiserver does.
   */
  resolveService?(namespace: string, name: string, port: number): string | undefined;
}

/** The stored webhook configuration objects admission consults. */
export interface WebhookConfigurations {
  mutating: unknown[];
  validating: unknown[];
}

type Rejection = Extract<AdmissionOutcome, { allowed: false }>;

/**
 * Connections to webhooks are kept open between calls, as kube-apiserver keeps them: a TLS
 * handshake per call (two per Service create: mutating and validating) would cost more than the
 * webhook's own work. The agent keys its pooled sockets by the CA and server name of each call,
 * so a connection is only reused for the webhook it was verified for.
 */
const webhookAgent = new Agent({ keepAlive: true, maxSockets: 64 });

interface Webhook {
  name: string;
  clientConfig: JsonObject;
  rules: JsonObject[];
  failurePolicy: string;
  sideEffects: string | undefined;
  timeoutSeconds: number;
  namespaceSelector: unknown;
  objectSelector: unknown;
  admissionReviewVersions: string[];
}

/** A webhook that could not be called or answered nonsense; failurePolicy decides what it means. */
class WebhookCallError extends Error {}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function webhooksOf(configurations: unknown[]): Webhook[] {
  const named = configurations.filter(isObject).map((c) => ({
    name: isObject(c.metadata) && typeof c.metadata.name === 'string' ? c.metadata.name : '',
    webhooks: Array.isArray(c.webhooks) ? c.webhooks.filter(isObject) : [],
  }));
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return named.flatMap(({ webhooks }) =>
    webhooks.map((w) => ({
      name: typeof w.name === 'string' ? w.name : '',
      clientConfig: isObject(w.clientConfig) ? w.clientConfig : {},
      rules: Array.isArray(w.rules) ? w.rules.filter(isObject) : [],
      failurePolicy: typeof w.failurePolicy === 'string' ? w.failurePolicy : 'Fail',
      sideEffects: typeof w.sideEffects === 'string' ? w.sideEffects : undefined,
      timeoutSeconds: typeof w.timeoutSeconds === 'number' ? w.timeoutSeconds : 10,
      namespaceSelector: w.namespaceSelector,
      objectSelector: w.objectSelector,
      admissionReviewVersions: strings(w.admissionReviewVersions),
    })),
  );
}

function listMatches(allowed: string[], value: string): boolean {
  return allowed.includes('*') || allowed.includes(value);
}

function ruleMatches(rule: JsonObject, attrs: AdmissionAttributes): boolean {
  const { resource } = attrs;
  if (!listMatches(strings(rule.operations), attrs.operation)) return false;
  if (!listMatches(strings(rule.apiGroups), resource.group)) return false;
  if (!listMatches(strings(rule.apiVersions), resource.version)) return false;
  const subResource = attrs.subResource ?? '';
  const resourceMatches = strings(rule.resources).some((entry) => {
    const slash = entry.indexOf('/');
    const res = slash === -1 ? entry : entry.slice(0, slash);
    const sub = slash === -1 ? '' : entry.slice(slash + 1);
    return (res === '*' || res === resource.plural) && (sub === '*' || sub === subResource);
  });
  if (!resourceMatches) return false;
  const scope = typeof rule.scope === 'string' ? rule.scope : '*';
  const isNamespaceObject = resource.group === '' && resource.plural === 'namespaces';
  if (scope === 'Cluster') return !resource.namespaced || isNamespaceObject;
  if (scope === 'Namespaced') return resource.namespaced;
  return true;
}

/** metav1.LabelSelector semantics; an absent or empty selector matches everything. */
export function labelSelectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  if (!isObject(selector)) return true;
  const matchLabels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  for (const [key, value] of Object.entries(matchLabels)) if (labels[key] !== value) return false;
  const expressions = Array.isArray(selector.matchExpressions)
    ? selector.matchExpressions.filter(isObject)
    : [];
  for (const expression of expressions) {
    const key = typeof expression.key === 'string' ? expression.key : '';
    const values = strings(expression.values);
    const has = Object.hasOwn(labels, key);
    switch (expression.operator) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

function labelsOf(object: unknown): Record<string, string> | undefined {
  if (!isObject(object)) return undefined;
  const metadata = isObject(object.metadata) ? object.metadata : {};
  return isObject(metadata.labels) ? (metadata.labels as Record<string, string>) : {};
}

function isEmptySelector(selector: unknown): boolean {
  return (
    !isObject(selector) ||
    ((!isObject(selector.matchLabels) || Object.keys(selector.matchLabels).length === 0) &&
      (!Array.isArray(selector.matchExpressions) || selector.matchExpressions.length === 0))
  );
}

function webhookApplies(webhook: Webhook, attrs: AdmissionAttributes, lookups: AdmissionLookups): boolean {
  if (!webhook.rules.some((rule) => ruleMatches(rule, attrs))) return false;
  if (!isEmptySelector(webhook.namespaceSelector)) {
    const { resource } = attrs;
    if (resource.group === '' && resource.plural === 'namespaces') {
      // A Namespace is matched by its own labels (the new ones, or the old ones on delete).
      const own = labelsOf(attrs.object) ?? labelsOf(attrs.oldObject) ?? {};
      if (!labelSelectorMatches(webhook.namespaceSelector, own)) return false;
    } else if (resource.namespaced && attrs.namespace !== undefined && attrs.namespace !== '') {
      const namespaceLabels = lookups.namespaceLabels(attrs.namespace) ?? {};
      if (!labelSelectorMatches(webhook.namespaceSelector, namespaceLabels)) return false;
    }
  }
  if (!isEmptySelector(webhook.objectSelector)) {
    const matchesObject = (o: unknown): boolean => {
      const labels = labelsOf(o);
      return labels !== undefined && labelSelectorMatches(webhook.objectSelector, labels);
    };
    if (!matchesObject(attrs.object) && !matchesObject(attrs.oldObject)) return false;
  }
  return true;
}

const OPTIONS_KIND: Record<AdmissionAttributes['operation'], string> = {
  CREATE: 'CreateOptions',
  UPDATE: 'UpdateOptions',
  DELETE: 'DeleteOptions',
  CONNECT: 'ConnectOptions',
};

function admissionReview(uid: string, attrs: AdmissionAttributes, object: unknown): JsonObject {
  const { resource } = attrs;
  const kind = { group: resource.group, version: resource.version, kind: resource.kind };
  const resourceRef = { group: resource.group, version: resource.version, resource: resource.plural };
  const options: JsonObject = { kind: OPTIONS_KIND[attrs.operation], apiVersion: 'meta.k8s.io/v1' };
  if (attrs.dryRun) options.dryRun = ['All'];
  const request: JsonObject = {
    uid,
    kind,
    resource: resourceRef,
    requestKind: kind,
    requestResource: resourceRef,
    name: attrs.name,
    operation: attrs.operation,
    userInfo: { username: attrs.userInfo.username, groups: attrs.userInfo.groups },
    object: object ?? null,
    oldObject: attrs.oldObject ?? null,
    dryRun: attrs.dryRun,
    options,
  };
  if (attrs.subResource !== undefined && attrs.subResource !== '') {
    request.subResource = attrs.subResource;
    request.requestSubResource = attrs.subResource;
  }
  if (attrs.namespace !== undefined && attrs.namespace !== '') request.namespace = attrs.namespace;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

interface Endpoint {
  url: URL;
  servername: string | undefined;
  shown: string;
}

function endpointOf(webhook: Webhook, lookups: AdmissionLookups): Endpoint {
  const timeout = `timeout=${webhook.timeoutSeconds}s`;
  const { clientConfig } = webhook;
  if (typeof clientConfig.url === 'string') {
    const url = new URL(clientConfig.url);
    url.search = url.search === '' ? `?${timeout}` : `${url.search}&${timeout}`;
    return { url, servername: undefined, shown: url.href };
  }
  const service = isObject(clientConfig.service) ? clientConfig.service : {};
  const name = typeof service.name === 'string' ? service.name : '';
  const namespace = typeof service.namespace === 'string' ? service.namespace : '';
  const port = typeof service.port === 'number' ? service.port : 443;
  const path = typeof service.path === 'string' ? service.path : '';
  const shown = `https://${name}.${namespace}.svc:${port}${path}?${timeout}`;
  const base = lookups.resolveService?.(namespace, name, port);
  if (base === undefined)
    throw new WebhookCallError(
      `failed to call webhook: Post "${shown}": service "${namespace}/${name}" cannot be reached from the local API server`,
    );
  const url = new URL(`${base.replace(/\/+$/, '')}${path}?${timeout}`);
  return { url, servername: `${name}.${namespace}.svc`, shown };
}

function describeCallFailure(err: unknown, endpoint: Endpoint): string {
  const e = err as NodeJS.ErrnoException;
  let detail = e.message;
  if (e.code === 'ECONNREFUSED') detail = `dial tcp ${endpoint.url.host}: connect: connection refused`;
  else if (e.name === 'TimeoutError' || e.name === 'AbortError') detail = 'context deadline exceeded';
  else if (typeof e.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(e.code))
    detail = `tls: failed to verify certificate: x509: ${e.message}`;
  return `failed to call webhook: Post "${endpoint.shown}": ${detail}`;
}

function post(endpoint: Endpoint, webhook: Webhook, body: string): Promise<{ status: number; text: string }> {
  const caBundle = webhook.clientConfig.caBundle;
  const ca = typeof caBundle === 'string' && caBundle !== '' ? Buffer.from(caBundle, 'base64') : undefined;
  const signal = AbortSignal.timeout(webhook.timeoutSeconds * 1000);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      endpoint.url,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        ...(ca === undefined ? {} : { ca }),
        ...(endpoint.servername === undefined ? {} : { servername: endpoint.servername }),
        signal,
        agent: webhookAgent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The parts of an AdmissionReview response admission acts on. */
interface WebhookVerdict {
  allowed: boolean;
  status: JsonObject;
  patch: unknown[] | undefined;
  warnings: string[];
}

async function callWebhook(
  webhook: Webhook,
  attrs: AdmissionAttributes,
  object: unknown,
  lookups: AdmissionLookups,
): Promise<WebhookVerdict> {
  if (!webhook.admissionReviewVersions.includes('v1'))
    throw new WebhookCallError(
      `webhook does not accept known AdmissionReview versions: it accepts ${JSON.stringify(webhook.admissionReviewVersions)}, this server sends v1`,
    );
  const endpoint = endpointOf(webhook, lookups);
  const uid = randomUUID();
  let reply: { status: number; text: string };
  try {
    reply = await post(endpoint, webhook, JSON.stringify(admissionReview(uid, attrs, object)));
  } catch (err) {
    throw new WebhookCallError(describeCallFailure(err, endpoint));
  }
  if (reply.status < 200 || reply.status > 299)
    throw new WebhookCallError(
      `failed to call webhook: the server responded with the status code ${reply.status} but did not return more information`,
    );
  let review: unknown;
  try {
    review = JSON.parse(reply.text);
  } catch {
    throw new WebhookCallError('received invalid webhook response: the body is not JSON');
  }
  if (!isObject(review) || review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview')
    throw new WebhookCallError(
      'expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got a different object',
    );
  const response = isObject(review.response) ? review.response : undefined;
  if (response === undefined) throw new WebhookCallError('webhook response was absent');
  if (response.uid !== uid)
    throw new WebhookCallError(`expected response.uid="${uid}", got "${String(response.uid ?? '')}"`);
  let patch: unknown[] | undefined;
  if (response.patch !== undefined && response.patch !== null) {
    if (response.patchType !== 'JSONPatch')
      throw new WebhookCallError(`unsupported patch type "${String(response.patchType ?? '')}"`);
    try {
      const decoded: unknown = JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8'));
      if (!Array.isArray(decoded)) throw new Error('not a JSON array');
      patch = decoded;
    } catch (err) {
      throw new WebhookCallError(
        `received invalid webhook response: the patch is not a JSON patch: ${(err as Error).message}`,
      );
    }
  }
  return {
    allowed: response.allowed === true,
    status: isObject(response.status) ? response.status : {},
    patch,
    warnings: strings(response.warnings),
  };
}

function denial(webhook: Webhook, status: JsonObject): Rejection {
  const code = typeof status.code === 'number' && status.code >= 400 ? status.code : 403;
  const reason = typeof status.reason === 'string' ? status.reason : '';
  const deniedBy = `admission webhook "${webhook.name}" denied the request`;
  let message = `${deniedBy} without explanation`;
  if (typeof status.message === 'string' && status.message !== '') message = `${deniedBy}: ${status.message}`;
  else if (reason !== '') message = `${deniedBy}: ${reason}`;
  return isObject(status.details)
    ? { allowed: false, code, reason, message, details: status.details }
    : { allowed: false, code, reason, message };
}

function callFailure(webhook: Webhook, err: WebhookCallError): Rejection {
  return {
    allowed: false,
    code: 500,
    reason: 'InternalError',
    message: `Internal error occurred: failed calling webhook "${webhook.name}": ${err.message}`,
  };
}

/** The dry-run check every matching webhook passes before it may be called. */
function dryRunRejection(webhook: Webhook, attrs: AdmissionAttributes): Rejection | undefined {
  if (!attrs.dryRun) return undefined;
  if (webhook.sideEffects === undefined)
    return { allowed: false, code: 400, reason: 'BadRequest', message: 'Webhook SideEffects is nil' };
  if (webhook.sideEffects === 'None' || webhook.sideEffects === 'NoneOnDryRun') return undefined;
  return {
    allowed: false,
    code: 400,
    reason: 'BadRequest',
    message: `admission webhook "${webhook.name}" does not support dry run`,
  };
}

type Verdict = { verdict: WebhookVerdict } | { rejection: Rejection } | { skipped: true };

async function consult(
  webhook: Webhook,
  attrs: AdmissionAttributes,
  object: unknown,
  lookups: AdmissionLookups,
): Promise<Verdict> {
  const dryRun = dryRunRejection(webhook, attrs);
  if (dryRun !== undefined) return { rejection: dryRun };
  try {
    const verdict = await callWebhook(webhook, attrs, object, lookups);
    return verdict.allowed ? { verdict } : { rejection: denial(webhook, verdict.status) };
  } catch (err) {
    if (!(err instanceof WebhookCallError)) throw err;
    return webhook.failurePolicy === 'Ignore' ? { skipped: true } : { rejection: callFailure(webhook, err) };
  }
}

/**
 * Admits one request: mutating webhooks in order, then validating webhooks in parallel. Resolves to
 * the admitted object (after every JSONPatch) with the webhooks' warnings, or to the rejection the
 * client gets.
 */
export async function admit(
  attrs: AdmissionAttributes,
  configs: WebhookConfigurations,
  lookups: AdmissionLookups,
): Promise<AdmissionOutcome> {
  const warnings: string[] = [];
  let object: unknown = attrs.object === undefined ? undefined : structuredClone(attrs.object);
  for (const webhook of webhooksOf(configs.mutating)) {
    if (!webhookApplies(webhook, { ...attrs, object }, lookups)) continue;
    const result = await consult(webhook, attrs, object, lookups);
    if ('rejection' in result) return result.rejection;
    if ('skipped' in result) continue;
    warnings.push(...result.verdict.warnings);
    if (result.verdict.patch !== undefined && object !== undefined) {
      try {
        object = applyJsonPatch(object, result.verdict.patch);
      } catch (err) {
        return callFailure(
          webhook,
          new WebhookCallError(
            `received invalid webhook response: the patch cannot be applied: ${(err as Error).message}`,
          ),
        );
      }
    }
  }
  const validating = webhooksOf(configs.validating).filter((w) =>
    webhookApplies(w, { ...attrs, object }, lookups),
  );
  const results = await Promise.all(validating.map((webhook) => consult(webhook, attrs, object, lookups)));
  for (const result of results) {
    if ('rejection' in result) return result.rejection;
    if ('verdict' in result) warnings.push(...result.verdict.warnings);
  }
  const outcome: AdmissionOutcome = { allowed: true, warnings };
  if (object !== undefined) outcome.object = object;
  return outcome;
}
