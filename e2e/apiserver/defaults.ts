/**
 * The defaults kube-apiserver fills into core kinds on write, for the fields controllers and kubectl
 * read back (Service type and port protocol, Pod restart policy, Deployment strategy, ...).
 * Deliberately absent: ClusterIP and NodePort allocation, which Portico's admission webhook does.
 */

import { pruneAndDefaultCustomResource } from './crd-schema.ts';
import type { JsonObject } from './patch.ts';
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';

function setDefault(target: JsonObject, field: string, value: unknown): void {
  if (target[field] === undefined || target[field] === null) target[field] = value;
}

function objects(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function defaultContainer(container: JsonObject): void {
  const image = typeof container.image === 'string' ? container.image : '';
  const tag = image.includes('@') ? 'digest' : (/:([^/]+)$/.exec(image)?.[1] ?? 'latest');
  setDefault(container, 'imagePullPolicy', tag === 'latest' ? 'Always' : 'IfNotPresent');
  setDefault(container, 'terminationMessagePath', '/dev/termination-log');
  setDefault(container, 'terminationMessagePolicy', 'File');
  setDefault(container, 'resources', {});
  for (const port of objects(container.ports)) setDefault(port, 'protocol', 'TCP');
}

function defaultPodSpec(spec: JsonObject): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'schedulerName', 'default-scheduler');
  setDefault(spec, 'securityContext', {});
  for (const c of [...objects(spec.containers), ...objects(spec.initContainers)]) defaultContainer(c);
}

function defaultService(spec: JsonObject): void {
  setDefault(spec, 'type', 'ClusterIP');
  // The Service strategy keeps clusterIP and clusterIPs[0] equal, whichever one the client set.
  const clusterIPs = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  if (typeof spec.clusterIP === 'string' && spec.clusterIP !== '' && clusterIPs.length === 0)
    spec.clusterIPs = [spec.clusterIP];
  else if ((spec.clusterIP === undefined || spec.clusterIP === '') && typeof clusterIPs[0] === 'string')
    spec.clusterIP = clusterIPs[0];
  if (spec.type !== 'ExternalName') {
    setDefault(spec, 'sessionAffinity', 'None');
    setDefault(spec, 'internalTrafficPolicy', 'Cluster');
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer')
    setDefault(spec, 'externalTrafficPolicy', 'Cluster');
  for (const port of objects(spec.ports)) {
    setDefault(port, 'protocol', 'TCP');
    if (spec.type !== 'ExternalName') setDefault(port, 'targetPort', port.port);
  }
}

function defaultWorkload(spec: JsonObject, kind: string): void {
  setDefault(spec, 'replicas', 1);
  if (kind === 'Deployment') {
    setDefault(spec, 'revisionHistoryLimit', 10);
    setDefault(spec, 'progressDeadlineSeconds', 600);
    setDefault(spec, 'strategy', { type: 'RollingUpdate' });
    const strategy = spec.strategy as JsonObject;
    if (strategy.type === 'RollingUpdate')
      setDefault(strategy, 'rollingUpdate', { maxUnavailable: '25%', maxSurge: '25%' });
  }
  const template = spec.template;
  if (isObject(template) && isObject(template.spec)) defaultPodSpec(template.spec);
}

/** A DaemonSet runs one pod per node, so it has no replicas; its rollout replaces one node at a time. */
function defaultDaemonSet(spec: JsonObject): void {
  setDefault(spec, 'revisionHistoryLimit', 10);
  setDefault(spec, 'updateStrategy', { type: 'RollingUpdate' });
  const strategy = spec.updateStrategy as JsonObject;
  if (strategy.type === 'RollingUpdate')
    setDefault(strategy, 'rollingUpdate', { maxUnavailable: 1, maxSurge: 0 });
  const template = spec.template;
  if (isObject(template) && isObject(template.spec)) defaultPodSpec(template.spec);
}

/**
 * Fills the defaults of a built-in kind into `object` in place (the caller owns the copy); for a
 * custom resource, prunes unknown fields and fills the defaults of its CRD schema.
 */
export function applyDefaults(resource: ResourceType, object: JsonObject): void {
  if (resource.custom !== undefined) {
    pruneAndDefaultCustomResource(object, resource.custom.schema);
    return;
  }
  const spec = object.spec;
  const key = `${resource.group}/${resource.kind}`;
  if (key === '/Service' && isObject(spec)) defaultService(spec);
  else if (key === '/Pod' && isObject(spec)) defaultPodSpec(spec);
  else if ((key === 'apps/Deployment' || key === 'apps/ReplicaSet') && isObject(spec))
    defaultWorkload(spec, resource.kind);
  else if (key === 'apps/DaemonSet' && isObject(spec)) defaultDaemonSet(spec);
  else if (key === '/Secret') setDefault(object, 'type', 'Opaque');
  else if (key === '/Endpoints') {
    for (const subset of objects(object.subsets)) {
      for (const port of objects(subset.ports)) setDefault(port, 'protocol', 'TCP');
    }
  } else if (key === 'discovery.k8s.io/EndpointSlice') {
    for (const port of objects(object.ports)) {
      setDefault(port, 'name', '');
      setDefault(port, 'protocol', 'TCP');
    }
  }
}

/** The QoS class kube-apiserver records in a new Pod's status. */
export function podQosClass(spec: unknown): string {
  const containers = isObject(spec) ? objects(spec.containers) : [];
  let anyResources = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const resources = isObject(c.resources) ? c.resources : {};
    const requests = isObject(resources.requests) ? resources.requests : {};
    const limits = isObject(resources.limits) ? resources.limits : {};
    if (Object.keys(requests).length > 0 || Object.keys(limits).length > 0) anyResources = true;
    for (const r of ['cpu', 'memory']) {
      if (limits[r] === undefined || (requests[r] !== undefined && requests[r] !== limits[r]))
        guaranteed = false;
    }
  }
  if (!anyResources) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function portKey(port: JsonObject): string {
  return `${String(port.port)}/${String(port.protocol ?? 'TCP')}`;
}

/**
 * What kube-apiserver's Service REST update does before validation: an update that leaves
 * clusterIP, clusterIPs, nodePorts or healthCheckNodePort empty keeps the values already allocated,
 * so a client that PUTs a Service built from scratch does not release its addresses.
 */
export function keepAllocatedServiceValues(next: JsonObject, current: JsonObject): void {
  const spec = isObject(next.spec) ? next.spec : undefined;
  const old = isObject(current.spec) ? current.spec : undefined;
  if (!spec || !old || spec.type === 'ExternalName' || old.type === 'ExternalName') return;
  if ((spec.clusterIP === undefined || spec.clusterIP === '') && typeof old.clusterIP === 'string') {
    spec.clusterIP = old.clusterIP;
    if (spec.clusterIPs === undefined && old.clusterIPs !== undefined) spec.clusterIPs = old.clusterIPs;
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    const oldPorts = new Map(objects(old.ports).map((p) => [portKey(p), p]));
    for (const port of objects(spec.ports)) {
      const before = oldPorts.get(portKey(port));
      if ((port.nodePort === undefined || port.nodePort === 0) && before?.nodePort !== undefined)
        port.nodePort = before.nodePort;
    }
    if (
      (spec.healthCheckNodePort === undefined || spec.healthCheckNodePort === 0) &&
      old.healthCheckNodePort !== undefined
    ) {
      spec.healthCheckNodePort = old.healthCheckNodePort;
    }
  }
}
