/**
 * Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (`Accept: ...;as=Table`) when it
 * prints `get` output, with the columns and cell formats of upstream's printers
 * (pkg/printers/internalversion) so `kubectl get` and `get -o wide` look as they do against a real
 * cluster. The server always sends every column; kubectl hides those with priority > 0 unless
 * asked for `-o wide`.
 */

import type { ResourceType } from './resources.ts';

type Json = Record<string, unknown>;

/** One column of a Table, as meta.k8s.io/v1 TableColumnDefinition. */
export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

/** A printed cell: strings, numbers and booleans as upstream's printers emit them. */
export type TableCell = string | number | boolean | null;

interface Printer {
  columns: TableColumn[];
  cells(object: Json, now: number): TableCell[];
  conditions?(object: Json): Json[] | undefined;
}

/** Options of {@link toTable}: which form each row's object takes, and the list metadata. */
export interface TableOptions {
  includeObject: 'None' | 'Object' | 'Metadata';
  resourceVersion: string;
  continue?: string;
}

function obj(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/**
 * A duration as upstream's `duration.HumanDuration` prints it: precise when short ("90s", "5m30s"),
 * coarser as it grows ("3h", "12d", "2y30d").
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.trunc(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 365 * 8) {
    const rest = days % 365;
    return rest === 0 ? `${Math.trunc(days / 365)}y` : `${Math.trunc(days / 365)}y${rest}d`;
  }
  return `${Math.trunc(days / 365)}y`;
}

/** Age of a timestamp, "<unknown>" when there is none (upstream's translateTimestampSince). */
function since(timestamp: unknown, now: number): string {
  const parsed = typeof timestamp === 'string' ? Date.parse(timestamp) : Number.NaN;
  return Number.isNaN(parsed) ? '<unknown>' : humanDuration(now - parsed);
}

function age(object: Json, now: number): string {
  return since(obj(object.metadata).creationTimestamp, now);
}

function name(object: Json): string {
  return str(obj(object.metadata).name);
}

function column(
  columnName: string,
  type: string,
  description: string,
  priority = 0,
  format = '',
): TableColumn {
  return { name: columnName, type, format, description, priority };
}

const NAME_COLUMN = column(
  'Name',
  'string',
  "The object's name, unique among objects of its kind in its namespace.",
  0,
  'name',
);
const AGE_COLUMN = column('Age', 'string', 'How long ago the server created the object.');

/** `k=v,k2=v2` sorted by key, as labels.FormatLabels; "<none>" when empty. */
function formatLabels(labels: unknown): string {
  const entries = Object.entries(obj(labels)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${str(v)}`).join(',');
}

/** A metav1.LabelSelector as its selector string; "<none>" when absent, "" when it selects everything. */
function formatLabelSelector(selector: unknown): string {
  if (selector === undefined || selector === null) return '<none>';
  const requirements: [string, string][] = [];
  for (const [key, value] of Object.entries(obj(obj(selector).matchLabels)))
    requirements.push([key, `${key}=${str(value)}`]);
  for (const expression of arr(obj(selector).matchExpressions)) {
    const e = obj(expression);
    const key = str(e.key);
    const values = arr(e.values).map(str).sort().join(',');
    const printed: Record<string, string> = {
      In: `${key} in (${values})`,
      NotIn: `${key} notin (${values})`,
      Exists: key,
      DoesNotExist: `!${key}`,
    };
    requirements.push([key, printed[str(e.operator)] ?? key]);
  }
  return requirements
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, printed]) => printed)
    .join(',');
}

/** Items joined by commas, at most three, then " + N more..." (upstream's endpoint lists). */
function listWithMore(items: readonly string[], whenEmpty: string): string {
  const max = 3;
  if (items.length === 0) return whenEmpty;
  const shown = items.slice(0, max).join(',');
  return items.length > max ? `${shown} + ${items.length - max} more...` : shown;
}

function containerNamesAndImages(podSpec: Json): [string, string] {
  const containers = arr(podSpec.containers).map(obj);
  return [containers.map((c) => str(c.name)).join(','), containers.map((c) => str(c.image)).join(',')];
}

function isRestartableInit(container: Json | undefined): boolean {
  return container !== undefined && container.restartPolicy === 'Always';
}

function later(a: string, b: unknown): string {
  const candidate = str(b);
  return candidate !== '' && (a === '' || Date.parse(candidate) > Date.parse(a)) ? candidate : a;
}

/** The READY, STATUS and RESTARTS cells of a pod, following upstream's printPod step by step. */
function podState(pod: Json, now: number): { ready: string; reason: string; restarts: string } {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  const initSpecs = new Map(arr(spec.initContainers).map((c) => [str(obj(c).name), obj(c)]));
  let totalContainers = arr(spec.containers).length;
  for (const c of initSpecs.values()) if (isRestartableInit(c)) totalContainers++;
  let readyContainers = 0;
  let restarts = 0;
  let restartableInitRestarts = 0;
  let lastRestart = '';
  let lastRestartableInitRestart = '';
  let reason = str(status.reason) || str(status.phase);
  for (const condition of arr(status.conditions).map(obj)) {
    if (condition.type === 'PodScheduled' && condition.reason === 'SchedulingGated')
      reason = 'SchedulingGated';
  }
  let initializing = false;
  const initStatuses = arr(status.initContainerStatuses).map(obj);
  for (const [i, container] of initStatuses.entries()) {
    const restartCount = num(container.restartCount);
    const finished = obj(obj(container.lastState).terminated).finishedAt;
    restarts += restartCount;
    lastRestart = later(lastRestart, finished);
    const restartable = isRestartableInit(initSpecs.get(str(container.name)));
    if (restartable) {
      restartableInitRestarts += restartCount;
      lastRestartableInitRestart = later(lastRestartableInitRestart, finished);
    }
    const state = obj(container.state);
    const terminated = state.terminated === undefined ? undefined : obj(state.terminated);
    const waiting = state.waiting === undefined ? undefined : obj(state.waiting);
    if (terminated !== undefined && num(terminated.exitCode) === 0) continue;
    if (restartable && container.started === true) {
      if (container.ready === true) readyContainers++;
      continue;
    }
    if (terminated !== undefined) {
      if (str(terminated.reason) !== '') reason = `Init:${str(terminated.reason)}`;
      else if (num(terminated.signal) !== 0) reason = `Init:Signal:${num(terminated.signal)}`;
      else reason = `Init:ExitCode:${num(terminated.exitCode)}`;
    } else if (waiting !== undefined && str(waiting.reason) !== '' && waiting.reason !== 'PodInitializing') {
      reason = `Init:${str(waiting.reason)}`;
    } else {
      reason = `Init:${i}/${initSpecs.size}`;
    }
    initializing = true;
    break;
  }
  const initialized = arr(status.conditions)
    .map(obj)
    .some((c) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initialized) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = arr(status.containerStatuses).map(obj);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const container = statuses[i]!;
      restarts += num(container.restartCount);
      lastRestart = later(lastRestart, obj(obj(container.lastState).terminated).finishedAt);
      const state = obj(container.state);
      const waiting = obj(state.waiting);
      const terminated = state.terminated === undefined ? undefined : obj(state.terminated);
      if (str(waiting.reason) !== '') reason = str(waiting.reason);
      else if (terminated !== undefined && str(terminated.reason) !== '') reason = str(terminated.reason);
      else if (terminated !== undefined) {
        reason =
          num(terminated.signal) !== 0
            ? `Signal:${num(terminated.signal)}`
            : `ExitCode:${num(terminated.exitCode)}`;
      } else if (container.ready === true && state.running !== undefined) {
        hasRunning = true;
        readyContainers++;
      }
    }
    if (reason === 'Completed' && hasRunning) {
      const podReady = arr(status.conditions)
        .map(obj)
        .some((c) => c.type === 'Ready' && c.status === 'True');
      reason = podReady ? 'Running' : 'NotReady';
    }
  }
  const deleting = obj(pod.metadata).deletionTimestamp !== undefined;
  if (deleting && status.reason === 'NodeLost') reason = 'Unknown';
  else if (deleting && status.phase !== 'Succeeded' && status.phase !== 'Failed') reason = 'Terminating';
  const restartsText =
    restarts !== 0 && lastRestart !== '' ? `${restarts} (${since(lastRestart, now)} ago)` : String(restarts);
  return { ready: `${readyContainers}/${totalContainers}`, reason, restarts: restartsText };
}

const POD_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Ready', 'string', 'Ready containers out of all containers of the pod.'),
    column('Status', 'string', "The pod's phase, or the reason its containers give for not running."),
    column('Restarts', 'string', "Restarts of the pod's containers, and how long ago the latest was."),
    AGE_COLUMN,
    column('IP', 'string', "The pod's IP address.", 1),
    column('Node', 'string', 'The node the pod runs on.', 1),
    column(
      'Nominated Node',
      'string',
      'The node the scheduler nominated while the pod preempts others there.',
      1,
    ),
    column('Readiness Gates', 'string', 'Readiness gates satisfied out of those the pod declares.', 1),
  ],
  cells(pod, now) {
    const spec = obj(pod.spec);
    const status = obj(pod.status);
    const { ready, reason, restarts } = podState(pod, now);
    const podIP = str(obj(arr(status.podIPs)[0]).ip) || str(status.podIP) || '<none>';
    const gates = arr(spec.readinessGates).map((g) => str(obj(g).conditionType));
    let readinessGates = '<none>';
    if (gates.length > 0) {
      const conditions = arr(status.conditions).map(obj);
      const satisfied = gates.filter(
        (gate) => conditions.find((c) => c.type === gate)?.status === 'True',
      ).length;
      readinessGates = `${satisfied}/${gates.length}`;
    }
    return [
      name(pod),
      ready,
      reason,
      restarts,
      age(pod, now),
      podIP,
      str(spec.nodeName) || '<none>',
      str(status.nominatedNodeName) || '<none>',
      readinessGates,
    ];
  },
  conditions(pod) {
    const phase = obj(pod.status).phase;
    if (phase === 'Succeeded')
      return [
        {
          type: 'Completed',
          status: 'True',
          reason: 'Succeeded',
          message: 'The pod has completed successfully.',
        },
      ];
    if (phase === 'Failed')
      return [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }];
    return undefined;
  },
};

function loadBalancerIngress(status: Json, wide: boolean): string {
  const ingress = arr(obj(obj(status).loadBalancer).ingress)
    .map(obj)
    .map((i) => str(i.ip) || str(i.hostname))
    .filter((s) => s !== '');
  const joined = ingress.join(',');
  return !wide && joined.length > 16 ? `${joined.slice(0, 13)}...` : joined;
}

/**
 * The EXTERNAL-IP cell. Upstream prints the wide form in the table (the server prints wide), so the
 * ingress list is not truncated here.
 */
function serviceExternalIP(service: Json): string {
  const spec = obj(service.spec);
  const externalIPs = arr(spec.externalIPs).map(str);
  switch (str(spec.type) || 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length > 0 ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = loadBalancerIngress(obj(service.status), true);
      const all = [...(ingress === '' ? [] : ingress.split(',')), ...externalIPs];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return str(spec.externalName);
    default:
      return '<unknown>';
  }
}

function servicePorts(spec: Json): string {
  const ports = arr(spec.ports).map(obj);
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => {
      const protocol = str(p.protocol) || 'TCP';
      return num(p.nodePort) !== 0
        ? `${num(p.port)}:${num(p.nodePort)}/${protocol}`
        : `${num(p.port)}/${protocol}`;
    })
    .join(',');
}

const SERVICE_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column(
      'Type',
      'string',
      'How the Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.',
    ),
    column('Cluster-IP', 'string', "The Service's virtual IP inside the cluster."),
    column(
      'External-IP',
      'string',
      'Addresses outside the cluster the Service is reachable on: load-balancer ingress and external IPs.',
    ),
    column('Port(s)', 'string', 'The ports of the Service, with their node ports.'),
    AGE_COLUMN,
    column('Selector', 'string', 'The labels of the pods the Service sends traffic to.', 1),
  ],
  cells(service, now) {
    const spec = obj(service.spec);
    const clusterIP = str(arr(spec.clusterIPs)[0]) || str(spec.clusterIP) || '<none>';
    return [
      name(service),
      str(spec.type) || 'ClusterIP',
      clusterIP,
      serviceExternalIP(service),
      servicePorts(spec),
      age(service, now),
      formatLabels(spec.selector),
    ];
  },
};

const ENDPOINTS_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Endpoints', 'string', 'Addresses and ports of the backends (at most three shown).'),
    AGE_COLUMN,
  ],
  cells(endpoints, now) {
    const subsets = arr(endpoints.subsets).map(obj);
    const list: string[] = [];
    for (const subset of subsets) {
      const addresses = arr(subset.addresses).map((a) => str(obj(a).ip));
      const ports = arr(subset.ports).map(obj);
      if (ports.length === 0) list.push(...addresses);
      for (const port of ports) {
        for (const ip of addresses)
          list.push(ip.includes(':') ? `[${ip}]:${num(port.port)}` : `${ip}:${num(port.port)}`);
      }
    }
    // Subsets without addresses print as an empty cell, as upstream; no subsets at all as <none>.
    return [name(endpoints), subsets.length === 0 ? '<none>' : listWithMore(list, ''), age(endpoints, now)];
  },
};

const ENDPOINT_SLICE_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('AddressType', 'string', 'IPv4, IPv6 or FQDN: the kind of address the slice holds.'),
    column('Ports', 'string', 'The ports every endpoint of the slice serves.'),
    column('Endpoints', 'string', 'Addresses of the endpoints in the slice (at most three shown).'),
    AGE_COLUMN,
  ],
  cells(slice, now) {
    const ports = arr(slice.ports)
      .map(obj)
      .map((p) => (typeof p.port === 'number' ? String(p.port) : str(p.name) || '*'));
    const addresses = arr(slice.endpoints).flatMap((e) => arr(obj(e).addresses).map(str));
    return [
      name(slice),
      str(slice.addressType),
      listWithMore(ports, '<unset>'),
      listWithMore(addresses, '<unset>'),
      age(slice, now),
    ];
  },
};

function replicas(spec: Json): number {
  return typeof spec.replicas === 'number' ? spec.replicas : 1;
}

const WORKLOAD_WIDE_COLUMNS = [
  column('Containers', 'string', "Names of the pod template's containers.", 1),
  column('Images', 'string', "Images of the pod template's containers.", 1),
  column('Selector', 'string', 'The selector of the pods the object manages.', 1),
];

const DEPLOYMENT_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Ready', 'string', 'Ready replicas out of the desired replicas.'),
    column('Up-to-date', 'string', 'Replicas already running the current pod template.'),
    column('Available', 'string', 'Replicas ready for at least minReadySeconds.'),
    AGE_COLUMN,
    ...WORKLOAD_WIDE_COLUMNS,
  ],
  cells(deployment, now) {
    const spec = obj(deployment.spec);
    const status = obj(deployment.status);
    const [containers, images] = containerNamesAndImages(obj(obj(spec.template).spec));
    return [
      name(deployment),
      `${num(status.readyReplicas)}/${replicas(spec)}`,
      num(status.updatedReplicas),
      num(status.availableReplicas),
      age(deployment, now),
      containers,
      images,
      formatLabelSelector(spec.selector),
    ];
  },
};

const REPLICA_SET_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Desired', 'integer', 'Replicas asked for.'),
    column('Current', 'integer', 'Replicas that exist.'),
    column('Ready', 'integer', 'Replicas that are ready.'),
    AGE_COLUMN,
    ...WORKLOAD_WIDE_COLUMNS,
  ],
  cells(replicaSet, now) {
    const spec = obj(replicaSet.spec);
    const status = obj(replicaSet.status);
    const [containers, images] = containerNamesAndImages(obj(obj(spec.template).spec));
    return [
      name(replicaSet),
      replicas(spec),
      num(status.replicas),
      num(status.readyReplicas),
      age(replicaSet, now),
      containers,
      images,
      formatLabelSelector(spec.selector),
    ];
  },
};

const DAEMON_SET_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Desired', 'integer', 'Nodes that should run the daemon pod.'),
    column('Current', 'integer', 'Nodes that run at least one daemon pod.'),
    column('Ready', 'integer', 'Nodes whose daemon pod is ready.'),
    column('Up-to-date', 'integer', 'Nodes that run the current pod template.'),
    column('Available', 'integer', 'Nodes whose daemon pod has been ready for minReadySeconds.'),
    column('Node Selector', 'string', 'The node labels a node needs to run the daemon pod.'),
    AGE_COLUMN,
    ...WORKLOAD_WIDE_COLUMNS,
  ],
  cells(daemonSet, now) {
    const spec = obj(daemonSet.spec);
    const status = obj(daemonSet.status);
    const podSpec = obj(obj(spec.template).spec);
    const [containers, images] = containerNamesAndImages(podSpec);
    return [
      name(daemonSet),
      num(status.desiredNumberScheduled),
      num(status.currentNumberScheduled),
      num(status.numberReady),
      num(status.updatedNumberScheduled),
      num(status.numberAvailable),
      formatLabels(podSpec.nodeSelector),
      age(daemonSet, now),
      containers,
      images,
      formatLabelSelector(spec.selector),
    ];
  },
};

/** An int-or-string as IntOrString.String() prints it, "N/A" when unset (upstream's PDB printer). */
function intOrStringOrNA(value: unknown): string {
  return typeof value === 'number' || typeof value === 'string' ? String(value) : 'N/A';
}

const POD_DISRUPTION_BUDGET_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Min Available', 'string', 'Pods that must stay available during an eviction.'),
    column('Max Unavailable', 'string', 'Pods that may be unavailable during an eviction.'),
    column('Allowed Disruptions', 'integer', 'Pod evictions allowed right now.'),
    AGE_COLUMN,
  ],
  cells(budget, now) {
    const spec = obj(budget.spec);
    return [
      name(budget),
      intOrStringOrNA(spec.minAvailable),
      intOrStringOrNA(spec.maxUnavailable),
      num(obj(budget.status).disruptionsAllowed),
      age(budget, now),
    ];
  },
};

/**
 * ROLE and the wide USERS, GROUPS and SERVICEACCOUNTS cells, as upstream's SubjectsStrings splits
 * the subjects (service accounts as namespace/name, joined by ", ").
 */
const ROLE_BINDING_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Role', 'string', 'The role the binding grants, as kind/name.'),
    AGE_COLUMN,
    column('Users', 'string', 'Users in the binding.', 1),
    column('Groups', 'string', 'Groups in the binding.', 1),
    column('ServiceAccounts', 'string', 'ServiceAccounts in the binding.', 1),
  ],
  cells(binding, now) {
    const roleRef = obj(binding.roleRef);
    const users: string[] = [];
    const groups: string[] = [];
    const serviceAccounts: string[] = [];
    for (const subject of arr(binding.subjects).map(obj)) {
      if (subject.kind === 'User') users.push(str(subject.name));
      else if (subject.kind === 'Group') groups.push(str(subject.name));
      else if (subject.kind === 'ServiceAccount')
        serviceAccounts.push(`${str(subject.namespace)}/${str(subject.name)}`);
    }
    return [
      name(binding),
      `${str(roleRef.kind)}/${str(roleRef.name)}`,
      age(binding, now),
      users.join(', '),
      groups.join(', '),
      serviceAccounts.join(', '),
    ];
  },
};

function nodeAddress(node: Json, type: string): string {
  const found = arr(obj(node.status).addresses)
    .map(obj)
    .find((a) => a.type === type);
  return found === undefined ? '<none>' : str(found.address);
}

const NODE_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Status', 'string', "The node's Ready condition, and whether scheduling is disabled."),
    column('Roles', 'string', 'Roles taken from node-role.kubernetes.io/ labels.'),
    AGE_COLUMN,
    column('Version', 'string', 'The kubelet version the node reports.'),
    column('Internal-IP', 'string', 'The first InternalIP address of the node.', 1),
    column('External-IP', 'string', 'The first ExternalIP address of the node.', 1),
    column('OS-Image', 'string', 'The operating system the node reports.', 1),
    column('Kernel-Version', 'string', 'The kernel version the node reports.', 1),
    column(
      'Container-Runtime',
      'string',
      'The container runtime and its version, as the node reports them.',
      1,
    ),
  ],
  cells(node, now) {
    const status = obj(node.status);
    const ready = arr(status.conditions)
      .map(obj)
      .find((c) => c.type === 'Ready');
    const states = ready === undefined ? ['Unknown'] : [ready.status === 'True' ? 'Ready' : 'NotReady'];
    if (obj(node.spec).unschedulable === true) states.push('SchedulingDisabled');
    const roles = new Set<string>();
    for (const [key, value] of Object.entries(obj(obj(node.metadata).labels))) {
      if (key.startsWith('node-role.kubernetes.io/')) roles.add(key.slice('node-role.kubernetes.io/'.length));
      else if (key === 'kubernetes.io/role' && str(value) !== '') roles.add(str(value));
    }
    const info = obj(status.nodeInfo);
    return [
      name(node),
      states.join(','),
      roles.size === 0 ? '<none>' : [...roles].sort().join(','),
      age(node, now),
      str(info.kubeletVersion),
      nodeAddress(node, 'InternalIP'),
      nodeAddress(node, 'ExternalIP'),
      str(info.osImage) || '<unknown>',
      str(info.kernelVersion) || '<unknown>',
      str(info.containerRuntimeVersion) || '<unknown>',
    ];
  },
};

const NAMESPACE_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Status', 'string', 'Active, or Terminating while its contents are deleted.'),
    AGE_COLUMN,
  ],
  cells: (namespace, now) => [name(namespace), str(obj(namespace.status).phase), age(namespace, now)],
};

const CONFIG_MAP_PRINTER: Printer = {
  columns: [NAME_COLUMN, column('Data', 'string', 'Number of keys in data and binaryData.'), AGE_COLUMN],
  cells: (configMap, now) => [
    name(configMap),
    Object.keys(obj(configMap.data)).length + Object.keys(obj(configMap.binaryData)).length,
    age(configMap, now),
  ],
};

const SECRET_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Type', 'string', 'The kind of secret, e.g. Opaque or kubernetes.io/tls.'),
    column('Data', 'string', 'Number of keys in the secret.'),
    AGE_COLUMN,
  ],
  cells: (secret, now) => [
    name(secret),
    str(secret.type) || 'Opaque',
    Object.keys({ ...obj(secret.data), ...obj(secret.stringData) }).length,
    age(secret, now),
  ],
};

/**
 * Events print the same whichever API served them: events.k8s.io/v1 names the core/v1 fields
 * differently (regarding, note, deprecated*), and upstream converts both to one internal type first.
 */
const EVENT_PRINTER: Printer = {
  columns: [
    column('Last Seen', 'string', 'How long ago the event last happened.'),
    column('Type', 'string', 'Normal or Warning.'),
    column('Reason', 'string', 'A short CamelCase word for why the event happened.'),
    column('Object', 'string', 'The object the event is about, as kind/name.'),
    column('Subobject', 'string', 'The part of the object the event is about, if any.', 1),
    column('Source', 'string', 'Who reported the event: component and instance.', 1),
    column('Message', 'string', 'What happened, for people.'),
    column('First Seen', 'string', 'How long ago the event first happened.', 1),
    column('Count', 'string', 'How often the event happened.', 1),
    { ...NAME_COLUMN, priority: 1 },
  ],
  cells(event, now) {
    const involved = obj(event.involvedObject ?? event.regarding);
    const source = obj(event.source ?? event.deprecatedSource);
    const firstTimestamp = str(event.firstTimestamp ?? event.deprecatedFirstTimestamp);
    const lastTimestamp = str(event.lastTimestamp ?? event.deprecatedLastTimestamp);
    const first = firstTimestamp !== '' ? since(firstTimestamp, now) : since(event.eventTime, now);
    let last = lastTimestamp !== '' ? since(lastTimestamp, now) : first;
    let count = num(event.count ?? event.deprecatedCount);
    const series = event.series === undefined ? undefined : obj(event.series);
    if (series !== undefined) {
      last = since(series.lastObservedTime, now);
      count = num(series.count);
    } else if (count === 0) count = 1;
    const kind = str(involved.kind).toLowerCase();
    const target = str(involved.name) !== '' ? `${kind}/${str(involved.name)}` : kind;
    const component =
      str(source.component) || str(event.reportingComponent) || str(event.reportingController);
    const instance = str(source.host) || str(event.reportingInstance);
    const sourceText =
      component === '' && instance === ''
        ? ''
        : [component, ...(instance === '' ? [] : [instance])].join(', ');
    return [
      last,
      str(event.type),
      str(event.reason),
      target,
      str(involved.fieldPath),
      sourceText,
      str(event.message ?? event.note).trim(),
      first,
      count,
      name(event),
    ];
  },
};

const LEASE_PRINTER: Printer = {
  columns: [NAME_COLUMN, column('Holder', 'string', 'The identity currently holding the lease.'), AGE_COLUMN],
  cells: (lease, now) => [name(lease), str(obj(lease.spec).holderIdentity), age(lease, now)],
};

const SERVICE_ACCOUNT_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Secrets', 'string', 'Number of secrets listed by the service account.'),
    AGE_COLUMN,
  ],
  cells: (account, now) => [name(account), arr(account.secrets).length, age(account, now)],
};

const WEBHOOK_CONFIGURATION_PRINTER: Printer = {
  columns: [
    NAME_COLUMN,
    column('Webhooks', 'integer', 'Number of webhooks in the configuration.'),
    AGE_COLUMN,
  ],
  cells: (configuration, now) => [
    name(configuration),
    arr(configuration.webhooks).length,
    age(configuration, now),
  ],
};

/**
 * Resources without a printer of their own (CRDs, Roles and ClusterRoles among them) print NAME and
 * CREATED AT.
 */
const DEFAULT_PRINTER: Printer = {
  columns: [NAME_COLUMN, column('Created At', 'date', 'When the server created the object.')],
  cells: (object) => [name(object), str(obj(object.metadata).creationTimestamp) || null],
};

const BUILTIN_PRINTERS: Record<string, Printer> = {
  '/pods': POD_PRINTER,
  '/services': SERVICE_PRINTER,
  '/endpoints': ENDPOINTS_PRINTER,
  'discovery.k8s.io/endpointslices': ENDPOINT_SLICE_PRINTER,
  'apps/deployments': DEPLOYMENT_PRINTER,
  'apps/replicasets': REPLICA_SET_PRINTER,
  'apps/daemonsets': DAEMON_SET_PRINTER,
  'policy/poddisruptionbudgets': POD_DISRUPTION_BUDGET_PRINTER,
  'rbac.authorization.k8s.io/rolebindings': ROLE_BINDING_PRINTER,
  'rbac.authorization.k8s.io/clusterrolebindings': ROLE_BINDING_PRINTER,
  '/nodes': NODE_PRINTER,
  '/namespaces': NAMESPACE_PRINTER,
  '/configmaps': CONFIG_MAP_PRINTER,
  '/secrets': SECRET_PRINTER,
  '/events': EVENT_PRINTER,
  'events.k8s.io/events': EVENT_PRINTER,
  'coordination.k8s.io/leases': LEASE_PRINTER,
  '/serviceaccounts': SERVICE_ACCOUNT_PRINTER,
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': WEBHOOK_CONFIGURATION_PRINTER,
  'admissionregistration.k8s.io/validatingwebhookconfigurations': WEBHOOK_CONFIGURATION_PRINTER,
};

/** One step of a printer column's JSONPath. */
type PathStep =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wildcard' }
  | { kind: 'filter'; path: PathStep[]; operator?: string; literal?: unknown };

const FILTER_OPERATORS = ['==', '!=', '<=', '>=', '<', '>'];

/** A filter's right-hand side: a quoted string, a number, true, false or null, as JSONPath reads it. */
function filterLiteral(text: string, path: string): unknown {
  const quoted = /^(['"])(.*)\1$/.exec(text);
  if (quoted !== null) return quoted[2];
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === 'null') return null;
  const number = Number(text);
  if (text === '' || Number.isNaN(number)) throw new Error(`unrecognized filter literal ${text} in ${path}`);
  return number;
}

/** `@.type=="Ready"` → the path under `@`, the operator and the literal; bare `@.ip` tests presence. */
function parseFilter(expression: string, path: string): PathStep {
  const trimmed = expression.trim();
  if (!trimmed.startsWith('@')) throw new Error(`filter must start with @ in ${path}`);
  let depth = 0;
  let quote = '';
  for (let i = 1; i < trimmed.length; i++) {
    const c = trimmed[i]!;
    if (quote !== '') {
      if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (depth === 0) {
      const operator = FILTER_OPERATORS.find((o) => trimmed.startsWith(o, i));
      if (operator !== undefined) {
        return {
          kind: 'filter',
          path: parseColumnPath(trimmed.slice(1, i).trim()),
          operator,
          literal: filterLiteral(trimmed.slice(i + operator.length).trim(), path),
        };
      }
    }
  }
  return { kind: 'filter', path: parseColumnPath(trimmed.slice(1)) };
}

/** Index of the `]` closing the bracket opened at `open`, skipping quoted text and nested brackets. */
function closingBracket(text: string, open: number): number {
  let depth = 0;
  let quote = '';
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return i;
  }
  throw new Error(`unclosed [ in ${text}`);
}

/**
 * Splits a printer column's JSONPath (`.status.conditions[?(@.type=="Ready")].status`,
 * `.metadata.labels.app\.kubernetes\.io/name`, `.spec.ports[*].port`) into steps. Throws on
 * syntax it cannot read, which the caller prints as an empty cell, as upstream does for a column
 * whose path finds nothing.
 */
function parseColumnPath(path: string): PathStep[] {
  const text = path.trim().replace(/^\{(.*)\}$/s, '$1');
  const steps: PathStep[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '.') {
      let name = '';
      i++;
      while (i < text.length && text[i] !== '.' && text[i] !== '[') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        name += text[i];
        i++;
      }
      if (name === '*') steps.push({ kind: 'wildcard' });
      else if (name !== '') steps.push({ kind: 'field', name });
    } else if (text[i] === '[') {
      const close = closingBracket(text, i);
      const inner = text.slice(i + 1, close).trim();
      i = close + 1;
      const quoted = /^(['"])(.*)\1$/.exec(inner);
      if (inner === '*') steps.push({ kind: 'wildcard' });
      else if (quoted !== null) steps.push({ kind: 'field', name: quoted[2]! });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (inner.startsWith('?(') && inner.endsWith(')'))
        steps.push(parseFilter(inner.slice(2, -1), path));
      else throw new Error(`unsupported JSONPath bracket [${inner}] in ${path}`);
    } else {
      throw new Error(`unexpected ${text[i]} at ${i} in ${path}`);
    }
  }
  return steps;
}

function compare(left: unknown, operator: string, right: unknown): boolean {
  switch (operator) {
    case '==':
      return left === right;
    case '!=':
      return left !== right;
    default: {
      if (typeof left !== typeof right || (typeof left !== 'number' && typeof left !== 'string'))
        return false;
      const [a, b] = [left as number | string, right as number | string];
      return operator === '<' ? a < b : operator === '>' ? a > b : operator === '<=' ? a <= b : a >= b;
    }
  }
}

/** Every value the steps reach from `roots`, in document order (JSONPath results). */
function evaluateSteps(roots: unknown[], steps: readonly PathStep[]): unknown[] {
  let current = roots;
  for (const step of steps) {
    const next: unknown[] = [];
    for (const value of current) {
      if (step.kind === 'field') {
        const found = obj(value)[step.name];
        if (found !== undefined && found !== null) next.push(found);
      } else if (step.kind === 'index') {
        if (!Array.isArray(value)) continue;
        const found = value[step.index < 0 ? value.length + step.index : step.index];
        if (found !== undefined && found !== null) next.push(found);
      } else {
        const items = Array.isArray(value) ? value : Object.values(obj(value));
        for (const item of items) {
          if (item === undefined || item === null) continue;
          if (step.kind === 'wildcard') {
            next.push(item);
            continue;
          }
          const [left] = evaluateSteps([item], step.path);
          const keep =
            step.operator === undefined ? left !== undefined : compare(left, step.operator, step.literal);
          if (keep) next.push(item);
        }
      }
    }
    current = next;
  }
  return current;
}

/**
 * Evaluates the JSONPath of a printer column and returns its first result, as upstream's CRD table
 * convertor prints it: dotted paths, indexes, `[*]`, escaped dots and filters
 * (`.status.conditions[?(@.type=="Ready")].status`). Undefined when nothing matches or the path
 * cannot be read.
 */
export function evaluateColumnPath(object: unknown, path: string): unknown {
  let steps: PathStep[];
  try {
    steps = parseColumnPath(path);
  } catch {
    return undefined;
  }
  return evaluateSteps([object], steps)[0];
}

/**
 * A cell of a custom printer column, typed as upstream's CRD table convertor does: "string" columns
 * print the value as JSONPath prints it, other types keep matching JSON values (dates become ages)
 * and anything else, or a missing value, is null.
 */
function customCell(type: string, value: unknown, now: number): TableCell {
  if (value === undefined || value === null) return null;
  switch (type) {
    case 'string':
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date':
      if (typeof value !== 'string') return null;
      return Number.isNaN(Date.parse(value)) ? '<invalid>' : since(value, now);
    default:
      return null;
  }
}

/** A custom resource's printer: NAME, then its CRD's columns, or AGE when it declares none. */
function customPrinter(resource: ResourceType): Printer {
  const declared = resource.custom?.printerColumns ?? [];
  const printerColumns =
    declared.length > 0
      ? declared
      : [
          {
            name: 'Age',
            type: 'date',
            jsonPath: '.metadata.creationTimestamp',
            description: AGE_COLUMN.description,
          },
        ];
  return {
    columns: [
      NAME_COLUMN,
      ...printerColumns.map((c) =>
        column(
          c.name,
          c.type,
          c.description ?? `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
          c.priority ?? 0,
          c.format ?? '',
        ),
      ),
    ],
    cells: (object, now) => [
      name(object),
      ...printerColumns.map((c) => customCell(c.type, evaluateColumnPath(object, c.jsonPath), now)),
    ],
  };
}

function printerFor(resource: ResourceType): Printer {
  if (resource.custom !== undefined) return customPrinter(resource);
  return BUILTIN_PRINTERS[`${resource.group}/${resource.plural}`] ?? DEFAULT_PRINTER;
}

function partialObjectMetadata(object: Json): Json {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj(object.metadata) };
}

/**
 * The meta.k8s.io/v1 Table of `objects` of one resource type: column definitions (priority 1 for
 * the `-o wide` ones) and one row per object with every cell, plus the object itself, its
 * PartialObjectMetadata, or nothing, as `includeObject` asks.
 */
export function toTable(resource: ResourceType, objects: readonly object[], opts: TableOptions): object {
  const printer = printerFor(resource);
  const now = Date.now();
  const rows = objects.map((o) => {
    const object = o as Json;
    const row: Json = { cells: printer.cells(object, now) };
    const conditions = printer.conditions?.(object);
    if (conditions !== undefined) row.conditions = conditions;
    if (opts.includeObject === 'Object') row.object = object;
    else if (opts.includeObject === 'Metadata') row.object = partialObjectMetadata(object);
    return row;
  });
  const metadata: Json = { resourceVersion: opts.resourceVersion };
  if (opts.continue !== undefined && opts.continue !== '') metadata.continue = opts.continue;
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions: printer.columns, rows };
}
