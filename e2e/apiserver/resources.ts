/**
 * The resource types the local API server serves, as data.
 *
 * Discovery documents, OpenAPI schemas, server-side table printing and the REST router are all
 * derived from this one list, so adding a kind here is the whole of serving it. CustomResourceDefinitions
 * add entries at run time through {@link ResourceType} values built from the CRD.
 */

/** One served resource (a plural name in one group/version). */
export interface ResourceType {
  /** API group; '' for the core (legacy) group served under /api/v1. */
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural used in URLs, e.g. 'services'. */
  plural: string;
  /** Lower-case singular, e.g. 'service'. */
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served beside the main resource. */
  status: boolean;
  scale: boolean;
  /** Verbs advertised in discovery (kubectl checks them before e.g. `get --watch`). */
  verbs: string[];
  /**
   * Whether objects carry metadata.generation (1 on create, bumped when anything but metadata and
   * status changes). Upstream sets it for workloads, CRDs and custom resources, not for Services,
   * Pods, Nodes, Namespaces or Leases in v1.32.
   */
  hasSpec: boolean;
  /** For custom resources: the CRD's printer columns and OpenAPI v3 schema. */
  custom?: {
    printerColumns: PrinterColumn[];
    schema: unknown;
  };
}

/** An additionalPrinterColumns entry of a CRD version, as `kubectl get` shows it. */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  opts: Partial<
    Pick<ResourceType, 'namespaced' | 'shortNames' | 'categories' | 'status' | 'scale' | 'hasSpec'>
  > = {},
): ResourceType {
  return {
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced: opts.namespaced ?? true,
    shortNames: opts.shortNames ?? [],
    categories: opts.categories ?? [],
    status: opts.status ?? false,
    scale: opts.scale ?? false,
    verbs: ALL_VERBS,
    hasSpec: opts.hasSpec ?? true,
  };
}

/** The built-in kinds, in the order discovery lists them. */
export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  builtin('', 'v1', 'Namespace', 'namespaces', {
    namespaced: false,
    shortNames: ['ns'],
    status: true,
    hasSpec: false,
  }),
  builtin('', 'v1', 'Pod', 'pods', { shortNames: ['po'], categories: ['all'], status: true, hasSpec: false }),
  builtin('', 'v1', 'Service', 'services', {
    shortNames: ['svc'],
    categories: ['all'],
    status: true,
    hasSpec: false,
  }),
  builtin('', 'v1', 'Endpoints', 'endpoints', { shortNames: ['ep'], hasSpec: false }),
  builtin('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'], hasSpec: false }),
  builtin('', 'v1', 'Secret', 'secrets', { hasSpec: false }),
  builtin('', 'v1', 'Node', 'nodes', { namespaced: false, shortNames: ['no'], status: true, hasSpec: false }),
  builtin('', 'v1', 'Event', 'events', { shortNames: ['ev'], hasSpec: false }),
  builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'], hasSpec: false }),
  builtin('events.k8s.io', 'v1', 'Event', 'events', { shortNames: ['ev'], hasSpec: false }),
  builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', { hasSpec: false }),
  builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', { hasSpec: false }),
  builtin('apps', 'v1', 'Deployment', 'deployments', {
    shortNames: ['deploy'],
    categories: ['all'],
    status: true,
    scale: true,
  }),
  builtin('apps', 'v1', 'ReplicaSet', 'replicasets', {
    shortNames: ['rs'],
    categories: ['all'],
    status: true,
    scale: true,
  }),
  builtin('apps', 'v1', 'DaemonSet', 'daemonsets', {
    shortNames: ['ds'],
    categories: ['all'],
    status: true,
  }),
  builtin('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', {
    shortNames: ['pdb'],
    status: true,
  }),
  builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', {
    namespaced: false,
    hasSpec: false,
  }),
  builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', {
    namespaced: false,
    hasSpec: false,
  }),
  builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', { hasSpec: false }),
  builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', { hasSpec: false }),
  builtin(
    'admissionregistration.k8s.io',
    'v1',
    'MutatingWebhookConfiguration',
    'mutatingwebhookconfigurations',
    {
      namespaced: false,
      categories: ['api-extensions'],
      hasSpec: false,
    },
  ),
  builtin(
    'admissionregistration.k8s.io',
    'v1',
    'ValidatingWebhookConfiguration',
    'validatingwebhookconfigurations',
    { namespaced: false, categories: ['api-extensions'], hasSpec: false },
  ),
  builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', {
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
  }),
];

/** `apps/v1`, or `v1` for the core group. */
export function apiVersionOf(r: Pick<ResourceType, 'group' | 'version'>): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

/** URL prefix of a group/version: `/api/v1` or `/apis/<group>/<version>`. */
export function groupVersionPath(r: Pick<ResourceType, 'group' | 'version'>): string {
  return r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
}
