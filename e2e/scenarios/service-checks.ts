/**
 * Checks the Service scenarios (headless, ExternalName, selector-less, multi-port, probe failure,
 * LoadBalancer) share, written only on {@link ScenarioDriver} so they run on every driver, and the
 * Service, pod and Deployment manifests they build.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ScenarioDriver, webContainer } from './driver.ts';

/** Label naming the Service an EndpointSlice belongs to (upstream `discovery.k8s.io/v1`). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Calls `probe` until it returns a value other than undefined and returns that value; fails with
 * `what` and the last value seen in `describe` when `timeoutMs` passes first.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      // A read may fail while an object is still being created; only the deadline decides.
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

/** The pod name in the seeds' demo body (`<p>The host is NAME</p>`), or undefined when absent. */
export function hostInBody(body: string): string | undefined {
  return /<p>The host is (\S+)<\/p>/.exec(body)?.[1];
}

/** JSON for `driver.apply`, which takes YAML or JSON streams. */
export function manifestList(objects: readonly unknown[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}

/** A Service named `name` with `spec` as given. */
export function serviceObject(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec };
}

/** {@link serviceObject} alone, ready for `driver.apply`. */
export function serviceManifest(name: string, spec: Record<string, unknown>): string {
  return manifestList([serviceObject(name, spec)]);
}

/**
 * A pod named `name` labelled `app: <app>` running the demo web container; `spec` adds fields such
 * as `nodeName` or `hostname`. No termination grace period, so deleting a scenario's objects never
 * waits the default 30 s.
 */
export function webPod(
  name: string,
  app: string,
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app } },
    spec: { ...spec, terminationGracePeriodSeconds: 0, containers: [webContainer()] },
  };
}

/** A Deployment named `app` of `replicas` demo web pods labelled `app: <app>`. */
export function webDeployment(app: string, replicas: number): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app },
    spec: {
      replicas,
      selector: { matchLabels: { app } },
      template: {
        metadata: { labels: { app } },
        spec: { terminationGracePeriodSeconds: 0, containers: [webContainer()] },
      },
    },
  };
}

/**
 * GETs `url` from the in-cluster client `count` times and returns the pod that answered each
 * request; every request must get a demo body.
 */
export async function hostsAnsweringInCluster(
  driver: ScenarioDriver,
  url: string,
  count: number,
): Promise<string[]> {
  const hosts: string[] = [];
  for (let attempt = 0; attempt < count; attempt += 1) {
    const body = await driver.execInClient(['curl', '-sS', '-m', '3', url]);
    const host = hostInBody(body);
    assert.ok(host !== undefined, `request ${attempt + 1} to ${url} answered ${JSON.stringify(body)}`);
    hosts.push(host);
  }
  return hosts;
}

/** A pod's name and address as scenarios compare them with EndpointSlices. */
export interface PodAddress {
  name: string;
  ip: string;
}

/** The pods labelled `app=<app>` that have an IP, sorted by name. */
export async function podAddresses(driver: ScenarioDriver, app: string): Promise<PodAddress[]> {
  const out = await driver.read(
    'pods',
    `{range .items[?(@.metadata.labels.app=="${app}")]}{.metadata.name}{" "}{.status.podIP}{"\\n"}{end}`,
  );
  return out
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((fields): fields is [string, string] => fields.length === 2 && fields[1] !== '')
    .map(([name, ip]) => ({ name, ip }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The IPv4 addresses busybox `nslookup` printed for the name it was asked, sorted: the lines after
 * `Name:` (the server's own address comes before). Both busybox formats: `Address: IP` and the
 * older `Address 1: IP NAME`.
 */
export function nslookupAddresses(output: string): string[] {
  const answer = output.slice(Math.max(0, output.indexOf('Name:')));
  return [...answer.matchAll(/^Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)(?:\s+\S+)?\s*$/gm)]
    .map((match) => match[1] ?? '')
    .sort();
}

/** One endpoint of an EndpointSlice, with the slice's ports and labels, flattened for comparisons. */
export interface SliceEndpoint {
  slice: string;
  managedBy: string;
  address: string;
  hostname: string;
  ready: string;
  /** `name=port/protocol` for every port of the slice, sorted. */
  ports: string[];
}

interface RawSlice {
  metadata?: { name?: string; labels?: Record<string, string> };
  endpoints?: { addresses?: string[]; hostname?: string; conditions?: { ready?: boolean } }[] | null;
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
}

/** Every endpoint of every EndpointSlice of Service `service` (in the scenario namespace). */
export async function sliceEndpoints(driver: ScenarioDriver, service: string): Promise<SliceEndpoint[]> {
  const out = await driver.read('endpointslices', '{.items}');
  const slices = (out.trim() === '' ? [] : JSON.parse(out)) as RawSlice[];
  const endpoints: SliceEndpoint[] = [];
  for (const slice of slices) {
    const labels = slice.metadata?.labels ?? {};
    if (labels[SERVICE_NAME_LABEL] !== service) continue;
    const ports = (slice.ports ?? [])
      .map((port) => `${port.name ?? ''}=${port.port ?? ''}/${port.protocol ?? 'TCP'}`)
      .sort();
    for (const endpoint of slice.endpoints ?? []) {
      for (const address of endpoint.addresses ?? []) {
        endpoints.push({
          slice: slice.metadata?.name ?? '',
          managedBy: labels['endpointslice.kubernetes.io/managed-by'] ?? '',
          address,
          hostname: endpoint.hostname ?? '',
          // Upstream reads a missing ready condition as ready.
          ready: String(endpoint.conditions?.ready ?? true),
          ports,
        });
      }
    }
  }
  return endpoints.sort((a, b) => a.address.localeCompare(b.address));
}

/** Whether `text` names IPv4 `address` as a whole address (198.18.0.5 is not in 198.18.0.50). */
export function mentionsAddress(text: string, address: string): boolean {
  const escaped = address.replaceAll('.', '\\.');
  return new RegExp(`(?<![\\d.])${escaped}(?![\\d])`).test(text);
}

/** The rules of every node, keyed by node name. */
export async function rulesOfEveryNode(driver: ScenarioDriver): Promise<Map<string, string>> {
  const rules = new Map<string, string>();
  for (const node of await driver.nodes()) rules.set(node.name, await driver.nodeRules(node.name));
  return rules;
}

const CAUGHT_UP_MARKER = 'zz-agents-caught-up';

/**
 * Waits until every node's agent has programmed a state newer than everything created before the
 * call: a selector-less ClusterIP Service created now shows up in a node's rules only after that
 * agent synced the Services and slices written before it. Checks that something is absent from the
 * rules are meaningless without this (the agent may simply not have caught up yet). Deletes the
 * marker Service again; its name shares no prefix with the scenarios' Services, so rules that mention
 * it never look like rules for them.
 */
export async function waitUntilAgentsCaughtUp(driver: ScenarioDriver): Promise<void> {
  const marker = CAUGHT_UP_MARKER;
  const manifest = serviceManifest(marker, { ports: [{ name: 'http', port: 80, targetPort: 80 }] });
  await driver.apply(manifest);
  try {
    const clusterIp = await eventually(`a ClusterIP for service/${marker}`, async () => {
      const ip = await driver.read(`service/${marker}`, '{.spec.clusterIP}');
      return ip === '' ? undefined : ip;
    });
    await eventually(`service/${marker} (${clusterIp}) in the rules of every node`, async () => {
      for (const rules of (await rulesOfEveryNode(driver)).values()) {
        if (!mentionsAddress(rules, clusterIp)) return undefined;
      }
      return true;
    });
  } finally {
    await driver.delete(manifest);
  }
}

/** Whether IPv4 `address` lies in `range`, given as a CIDR or as `first-last`. */
export function ipv4InRange(address: string, range: string): boolean {
  const value = ipv4ToNumber(address);
  if (range.includes('/')) {
    const [base = '', prefix = ''] = range.split('/');
    const bits = Number(prefix);
    const size = 2 ** (32 - bits);
    const first = Math.floor(ipv4ToNumber(base) / size) * size;
    return value >= first && value < first + size;
  }
  const [first = '', last = ''] = range.split('-');
  return value >= ipv4ToNumber(first) && value <= ipv4ToNumber(last);
}

function ipv4ToNumber(address: string): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`${JSON.stringify(address)} is not an IPv4 address`);
  }
  return octets.reduce((sum, octet) => sum * 256 + octet, 0);
}
