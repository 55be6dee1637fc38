/**
 * Label and field selectors in their query-string forms (`labelSelector=app=web,tier!=db`,
 * `fieldSelector=spec.nodeName=node-1`), compiled once per request into predicates.
 */

import { badRequest } from './errors.ts';

/** A compiled selector; `matches` takes a stored object. */
export type ObjectPredicate = (object: Record<string, unknown>) => boolean;

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Splits at commas that are not inside parentheses. */
function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function checkKey(key: string, selector: string): string {
  if (!LABEL_KEY.test(key) || key.length > 316) {
    throw badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${selector}"`);
  }
  return key;
}

function checkValue(value: string, selector: string): string {
  if (!LABEL_VALUE.test(value) || value.length > 63) {
    throw badRequest(
      `unable to parse requirement: invalid label value: "${value}" in selector "${selector}"`,
    );
  }
  return value;
}

function parseRequirement(part: string, selector: string): LabelRequirement {
  const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (setMatch) {
    const values = setMatch[3]!
      .split(',')
      .map((v) => v.trim())
      .map((v) => checkValue(v, selector));
    return { op: setMatch[2] as 'in' | 'notin', key: checkKey(setMatch[1]!, selector), values };
  }
  const cmp = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(part);
  if (cmp) {
    const key = checkKey(cmp[1]!, selector);
    const value = checkValue(cmp[3]!.trim(), selector);
    return { op: cmp[2] === '!=' ? 'notin' : 'in', key, values: [value] };
  }
  if (part.startsWith('!')) return { op: 'notexists', key: checkKey(part.slice(1).trim(), selector) };
  if (/^\S+$/.test(part)) return { op: 'exists', key: checkKey(part, selector) };
  throw badRequest(
    `unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, or end of string`,
  );
}

/** Whether a label set satisfies every requirement of a compiled label selector. */
function labelsMatch(requirements: readonly LabelRequirement[], labels: Record<string, string>): boolean {
  for (const req of requirements) {
    const has = Object.hasOwn(labels, req.key);
    switch (req.op) {
      case 'exists':
        if (!has) return false;
        break;
      case 'notexists':
        if (has) return false;
        break;
      case 'in':
        if (!has || !req.values.includes(labels[req.key]!)) return false;
        break;
      case 'notin':
        if (has && req.values.includes(labels[req.key]!)) return false;
        break;
    }
  }
  return true;
}

function labelsOf(object: Record<string, unknown>): Record<string, string> {
  const metadata = object.metadata as { labels?: Record<string, string> } | undefined;
  return metadata?.labels ?? {};
}

/**
 * Compiles a `labelSelector` query value (=, ==, !=, in, notin, exists, !key); undefined or empty
 * matches everything. Throws a 400 BadRequest for a malformed selector.
 */
export function parseLabelSelector(selector: string | undefined): ObjectPredicate | undefined {
  if (selector === undefined || selector.trim() === '') return undefined;
  const requirements = splitTopLevel(selector).map((part) => parseRequirement(part, selector));
  return (object) => labelsMatch(requirements, labelsOf(object));
}

/** Fields each kind can be selected by beyond metadata.name and metadata.namespace, by plural. */
const SELECTABLE_FIELDS: Record<string, readonly string[]> = {
  pods: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  events: [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  secrets: ['type'],
  namespaces: ['status.phase'],
  nodes: ['spec.unschedulable'],
  replicasets: ['status.replicas'],
};

function fieldValue(object: Record<string, unknown>, path: string): string {
  let current: unknown = object;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null) return '';
    current = (current as Record<string, unknown>)[part];
  }
  if (current === undefined || current === null) return '';
  if (typeof current === 'object') return JSON.stringify(current);
  if (path === 'source' && typeof object.source === 'object') return '';
  return String(current);
}

/**
 * Compiles a `fieldSelector` query value for one resource (by plural). Unsupported fields get the
 * 400 BadRequest kube-apiserver returns: `field label not supported: <field>`.
 */
export function parseFieldSelector(
  selector: string | undefined,
  plural: string,
): ObjectPredicate | undefined {
  if (selector === undefined || selector.trim() === '') return undefined;
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...(SELECTABLE_FIELDS[plural] ?? [])]);
  const terms = splitTopLevel(selector).map((part) => {
    const m = /^([^=!]+)(==|!=|=)(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    if (!allowed.has(field)) throw badRequest(`field label not supported: ${field}`);
    return { field, negate: m[2] === '!=', value: m[3]!.trim() };
  });
  return (object) => terms.every((t) => (fieldValue(object, t.field) === t.value) !== t.negate);
}
