import type { V1Node, V1NodeCondition } from '@kubernetes/client-node';
import { nodeLanAddress, nodePodCidr } from './netns.ts';

/** The zone label every local node carries, as cloud providers set it. */
export const zoneLabel = 'topology.kubernetes.io/zone';

/** Zones the local nodes are spread over, round-robin, so topology-aware code has something to see. */
export const defaultZones: readonly string[] = ['zone-a', 'zone-b'];

/** A local node's identity: name, index into the address plan, and the addresses that follow from it. */
export interface LocalNodeIdentity {
  readonly name: string;
  readonly index: number;
  readonly podCidr: string;
  readonly internalIp: string;
  readonly zone: string;
}

/**
 * The identity of node `index`: `node-<index>`, its LAN address from the address plan, and its pod
 * CIDR (by default the address plan's; a cluster with its own pod range passes the node's share).
 */
export function localNodeIdentity(
  index: number,
  zones: readonly string[] = defaultZones,
  podCidr: string = nodePodCidr(index),
): LocalNodeIdentity {
  return {
    name: `node-${index}`,
    index,
    podCidr,
    internalIp: nodeLanAddress(index),
    zone: zones[index % zones.length] ?? 'zone-a',
  };
}

/** Kubernetes timestamps have second precision; sub-second parts would make every rewrite a change. */
export function kubeNow(nowMs: number = Date.now()): Date {
  return new Date(Math.floor(nowMs / 1000) * 1000);
}

/**
 * An object as it travels and as informers hold it: plain JSON, timestamps as RFC 3339 strings
 * with second precision. Comparing desired and cached state in this form avoids rewriting an
 * object only because one side holds a Date and the other a string.
 */
export function toWire<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value).replace(/(T\d\d:\d\d:\d\d)\.\d{3}Z"/g, '$1Z"'));
}

/** The Ready condition a healthy kubelet reports, with the heartbeat at `now`. */
export function readyCondition(now: Date, since: Date): V1NodeCondition {
  return {
    type: 'Ready',
    status: 'True',
    reason: 'KubeletReady',
    message: 'kubelet is posting ready status',
    lastHeartbeatTime: now,
    lastTransitionTime: since,
  };
}

/** CPU every simulated node reports, as `status.capacity` and `status.allocatable`. */
export const LOCAL_NODE_CPU = '2';

function nodeResources(node: LocalNodeIdentity): Record<string, string> {
  const prefixLength = Number(node.podCidr.split('/')[1]);
  return { cpu: LOCAL_NODE_CPU, pods: String(2 ** (32 - prefixLength) - 3) };
}

/** The Node object a local kubelet registers: labels, podCIDR, addresses and Ready status. */
export function localNodeObject(node: LocalNodeIdentity, now: Date): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        [zoneLabel]: node.zone,
      },
    },
    spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] },
    status: {
      // Every simulated node claims the same CPU, so topology-mode Auto sees zones in proportion
      // to their node counts; pods is what the podCIDR holds (network, gateway and broadcast taken).
      capacity: nodeResources(node),
      allocatable: nodeResources(node),
      addresses: [
        { type: 'InternalIP', address: node.internalIp },
        { type: 'Hostname', address: node.name },
      ],
      conditions: [readyCondition(now, now)],
      nodeInfo: {
        architecture: process.arch,
        bootID: '',
        containerRuntimeVersion: 'portico-local://1',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: 'portico-local',
        machineID: '',
        operatingSystem: 'linux',
        osImage: 'Portico local node',
        systemUUID: '',
      },
    },
  };
}
