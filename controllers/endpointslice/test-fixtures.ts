/**
 * Builders for the plain Service, Pod and Node objects the planner tests and the benchmark feed in,
 * and an in-memory "API server" that applies a plan the way the real one would.
 */
import type {
  V1ContainerPort,
  V1EndpointSlice,
  V1Node,
  V1Pod,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { EndpointSlicePlan } from './plan.ts';

/** Fields of a test Service. */
export interface ServiceSpecInput {
  name?: string;
  namespace?: string;
  uid?: string;
  selector?: Record<string, string> | undefined;
  ports?: V1ServicePort[];
  clusterIP?: string;
  ipFamilies?: string[];
  publishNotReadyAddresses?: boolean;
  trafficDistribution?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  type?: string;
  deleting?: boolean;
}

/** A Service shaped as the API server returns it (ports and protocol defaulted). */
export function makeService(input: ServiceSpecInput = {}): V1Service {
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: input.name ?? 'web',
      namespace: input.namespace ?? 'default',
      uid: input.uid ?? 'svc-uid-1',
      labels: input.labels ?? {},
    },
    spec: {
      selector: 'selector' in input ? input.selector : { app: 'web' },
      ports: input.ports ?? [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      clusterIP: input.clusterIP ?? '10.96.0.10',
      ipFamilies: input.ipFamilies ?? ['IPv4'],
      type: input.type ?? 'ClusterIP',
    },
  };
  const spec = service.spec!;
  if (input.publishNotReadyAddresses !== undefined)
    spec.publishNotReadyAddresses = input.publishNotReadyAddresses;
  if (input.trafficDistribution !== undefined) spec.trafficDistribution = input.trafficDistribution;
  if (input.annotations !== undefined) service.metadata!.annotations = input.annotations;
  if (input.deleting === true) service.metadata!.deletionTimestamp = new Date('2026-01-01T00:00:00Z');
  return service;
}

/** Fields of a test Pod. */
export interface PodInput {
  name: string;
  namespace?: string;
  ips?: string[];
  ready?: boolean;
  node?: string;
  labels?: Record<string, string>;
  deleting?: boolean;
  phase?: string;
  containerPorts?: V1ContainerPort[];
  hostname?: string;
  subdomain?: string;
}

/** A running pod with the given IPs (default one derived from nothing: pass `ips`). */
export function makePod(input: PodInput): V1Pod {
  const ips = input.ips ?? [];
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: input.namespace ?? 'default',
      uid: `uid-${input.name}`,
      labels: input.labels ?? { app: 'web' },
    },
    spec: {
      nodeName: input.node ?? 'node-a',
      containers: [{ name: 'app', ports: input.containerPorts ?? [] }],
    },
    status: {
      phase: input.phase ?? 'Running',
      podIPs: ips.map((ip) => ({ ip })),
      conditions: [{ type: 'Ready', status: input.ready === false ? 'False' : 'True' }],
    },
  };
  if (ips.length > 0) pod.status!.podIP = ips[0];
  if (input.deleting === true) pod.metadata!.deletionTimestamp = new Date('2026-01-01T00:00:00Z');
  if (input.hostname !== undefined) pod.spec!.hostname = input.hostname;
  if (input.subdomain !== undefined) pod.spec!.subdomain = input.subdomain;
  return pod;
}

/** The (i+1)-th IPv4 address of 198.18.0.0/15, for numbered pods (up to 131,070 of them). */
export function ipv4At(i: number): string {
  const offset = i + 1;
  if (offset >= 2 ** 17 - 1) throw new RangeError(`pod number ${i} does not fit 198.18.0.0/15`);
  return `198.${18 + Math.floor(offset / 65536)}.${Math.floor(offset / 256) % 256}.${offset % 256}`;
}

/** `count` ready pods `pod-0000`… spread over the given nodes. */
export function makePods(count: number, nodeNames: readonly string[] = ['node-a']): V1Pod[] {
  return Array.from({ length: count }, (_, i) =>
    makePod({
      name: `pod-${String(i).padStart(4, '0')}`,
      ips: [ipv4At(i)],
      node: nodeNames[i % nodeNames.length]!,
    }),
  );
}

/** Nodes by name, each labelled with its zone. */
export function makeNodes(zones: Record<string, string>): Map<string, V1Node> {
  const nodes = new Map<string, V1Node>();
  for (const [name, zone] of Object.entries(zones)) {
    nodes.set(name, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
    });
  }
  return nodes;
}

/** A Node as the heuristic of `topology-mode: Auto` reads it. */
export interface CapacityNodeInput {
  /** `topology.kubernetes.io/zone`; none when undefined. */
  zone?: string;
  /** `status.allocatable.cpu`; none when undefined. */
  cpu?: string;
  /** The Ready condition (default true). */
  ready?: boolean;
  /** Extra labels, such as `node-role.kubernetes.io/control-plane`. */
  labels?: Record<string, string>;
}

/** Nodes by name with zone, allocatable CPU and readiness. */
export function makeCapacityNodes(input: Record<string, CapacityNodeInput>): Map<string, V1Node> {
  const nodes = new Map<string, V1Node>();
  for (const [name, node] of Object.entries(input)) {
    const labels: Record<string, string> = { ...node.labels };
    if (node.zone !== undefined) labels['topology.kubernetes.io/zone'] = node.zone;
    nodes.set(name, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels },
      status: {
        allocatable: node.cpu === undefined ? {} : { cpu: node.cpu },
        conditions: [{ type: 'Ready', status: node.ready === false ? 'False' : 'True' }],
      },
    });
  }
  return nodes;
}

/**
 * Applies a plan as the API server would: creates get a name, uid, resourceVersion and generation;
 * updates replace by name and bump generation; deletes remove. Returns the new set of slices.
 * Objects are cloned so later plans cannot alias what the test holds.
 */
export class FakeSliceStore {
  /** Current slices by name. */
  readonly slices = new Map<string, V1EndpointSlice>();
  #counter = 0;

  /** All slices, ordered by name. */
  list(): V1EndpointSlice[] {
    return [...this.slices.values()].sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  }

  /** Applies every write of the plan. */
  apply(plan: Pick<EndpointSlicePlan, 'create' | 'update' | 'delete'>): void {
    for (const slice of plan.create) {
      this.#counter += 1;
      const copy = structuredClone(slice);
      const name = `${copy.metadata!.generateName}${String(this.#counter).padStart(5, '0')}`;
      copy.metadata = { ...copy.metadata, name, uid: `slice-uid-${this.#counter}`, generation: 1 };
      copy.metadata.resourceVersion = String(this.#counter * 10);
      if (this.slices.has(name)) throw new Error(`create of existing slice ${name}`);
      this.slices.set(name, copy);
    }
    for (const slice of plan.update) {
      const name = slice.metadata!.name!;
      const current = this.slices.get(name);
      if (current === undefined) throw new Error(`update of missing slice ${name}`);
      const copy = structuredClone(slice);
      copy.metadata = {
        ...copy.metadata,
        uid: current.metadata!.uid,
        generation: (current.metadata!.generation ?? 0) + 1,
        resourceVersion: String(Number(current.metadata!.resourceVersion) + 1),
      };
      this.slices.set(name, copy);
    }
    for (const slice of plan.delete) {
      if (!this.slices.delete(slice.metadata!.name!))
        throw new Error(`delete of missing slice ${slice.metadata!.name}`);
    }
  }
}
