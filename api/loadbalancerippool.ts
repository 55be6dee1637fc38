/**
 * LoadBalancerIPPool (`portico.dev/v1alpha1`, cluster-scoped): a set of addresses Portico hands out
 * as `status.loadBalancer.ingress[].ip` of LoadBalancer Services.
 *
 * The CRD the chart installs (charts/portico/crds/loadbalancerippools.portico.dev.yaml) is this
 * module's {@link LOAD_BALANCER_IP_POOL_CRD} written out as YAML; a chart test keeps the two equal,
 * so the types, the schema the API server enforces and the schema the webhook assumes never drift.
 */
import type { V1Condition, V1LabelSelector, V1ObjectMeta } from '@kubernetes/client-node';

/** API group of Portico's own resources. */
export const PORTICO_GROUP = 'portico.dev';

/** Served and stored version of LoadBalancerIPPool. */
export const LOAD_BALANCER_IP_POOL_VERSION = 'v1alpha1';

/** `apiVersion` of a LoadBalancerIPPool object. */
export const LOAD_BALANCER_IP_POOL_API_VERSION = `${PORTICO_GROUP}/${LOAD_BALANCER_IP_POOL_VERSION}`;

/** `kind` of a LoadBalancerIPPool object. */
export const LOAD_BALANCER_IP_POOL_KIND = 'LoadBalancerIPPool';

/** Resource name in URLs and RBAC rules. */
export const LOAD_BALANCER_IP_POOL_PLURAL = 'loadbalancerippools';

/** Condition type: the pool's addresses parse, do not overlap other pools, and are in use. */
export const POOL_CONDITION_READY = 'Ready';

/** Condition type: every address of the pool is allocated. */
export const POOL_CONDITION_EXHAUSTED = 'Exhausted';

/** Which Services may take addresses from a pool, and in what order pools are tried. */
export interface LoadBalancerIPPoolSpec {
  /**
   * CIDRs (`198.18.10.0/24`, `fd00:10::/120`) or inclusive ranges (`198.18.10.10-198.18.10.20`);
   * IPv4 and IPv6 may be mixed in one pool.
   */
  addresses: string[];
  /** When false, the pool serves only Services that ask for one of its addresses by IP. Default true. */
  autoAssign?: boolean;
  /** Skip addresses ending in .0 and .255, which some old clients and routers mishandle. Default false. */
  avoidBuggyIPs?: boolean;
  /** Only Services whose labels match may take addresses from this pool; absent means every Service. */
  serviceSelector?: V1LabelSelector;
  /** Only Services in namespaces whose labels match may use this pool; absent means every namespace. */
  namespaceSelector?: V1LabelSelector;
  /** Pools a Service matches are tried in ascending priority (0 first). Default 0. */
  priority?: number;
}

/** What the controller-manager last observed about a pool. */
export interface LoadBalancerIPPoolStatus {
  /** How many addresses the pool holds after `avoidBuggyIPs`; saturates at 2^53-1 for huge IPv6 pools. */
  capacity?: number;
  /** How many of them are assigned to Services. */
  allocated?: number;
  /** `Ready` and `Exhausted` conditions, keyed by type. */
  conditions?: V1Condition[];
}

/** A LoadBalancerIPPool object as the API server returns it. */
export interface LoadBalancerIPPool {
  apiVersion: typeof LOAD_BALANCER_IP_POOL_API_VERSION;
  kind: typeof LOAD_BALANCER_IP_POOL_KIND;
  metadata: V1ObjectMeta;
  spec: LoadBalancerIPPoolSpec;
  status?: LoadBalancerIPPoolStatus;
}

/** The subset of an OpenAPI v3 schema (with Kubernetes extensions) that CRD structural schemas use. */
export interface OpenApiV3Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'number';
  description?: string;
  properties?: Record<string, OpenApiV3Schema>;
  additionalProperties?: OpenApiV3Schema;
  items?: OpenApiV3Schema;
  required?: string[];
  enum?: string[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

function labelSelectorSchema(description: string): OpenApiV3Schema {
  return {
    type: 'object',
    description,
    'x-kubernetes-map-type': 'atomic',
    properties: {
      matchLabels: {
        type: 'object',
        description: 'Labels that must all be present with these values.',
        additionalProperties: { type: 'string' },
      },
      matchExpressions: {
        type: 'array',
        description: 'Requirements that must all hold.',
        'x-kubernetes-list-type': 'atomic',
        items: {
          type: 'object',
          required: ['key', 'operator'],
          properties: {
            key: { type: 'string', description: 'Label key the requirement applies to.' },
            operator: {
              type: 'string',
              description: 'How the key relates to the values.',
              enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
            },
            values: {
              type: 'array',
              description: 'Values for In and NotIn; must be empty for Exists and DoesNotExist.',
              'x-kubernetes-list-type': 'atomic',
              items: { type: 'string' },
            },
          },
        },
      },
    },
  };
}

/** metav1.Condition, as every Kubernetes API describes it in its schema. */
const conditionSchema: OpenApiV3Schema = {
  type: 'object',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: { type: 'string', maxLength: 316, description: 'Condition type in CamelCase, e.g. Ready.' },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'], description: 'Status of the condition.' },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      minimum: 0,
      description: 'metadata.generation the condition was computed from.',
    },
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'When the status last changed.',
    },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: 'Machine-readable CamelCase reason for the last transition.',
    },
    message: { type: 'string', maxLength: 32768, description: 'Human-readable details.' },
  },
};

/**
 * Structural OpenAPI v3 schema of LoadBalancerIPPool. Address syntax, overlaps between pools and
 * overlap with the ClusterIP range are checked by the validating webhook, whose messages name the
 * field and the offending value; the schema checks shape only.
 */
export const LOAD_BALANCER_IP_POOL_SCHEMA: OpenApiV3Schema = {
  type: 'object',
  description: 'A set of addresses Portico assigns to LoadBalancer Services.',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string', description: 'Versioned schema of this object.' },
    kind: { type: 'string', description: 'REST resource this object represents.' },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      description: 'Which addresses the pool holds and which Services may use them.',
      required: ['addresses'],
      properties: {
        addresses: {
          type: 'array',
          description:
            'CIDRs (198.18.10.0/24, fd00:10::/120) or inclusive ranges (198.18.10.10-198.18.10.20); IPv4 and IPv6 may be mixed.',
          minItems: 1,
          'x-kubernetes-list-type': 'set',
          items: { type: 'string', minLength: 1, maxLength: 100 },
        },
        autoAssign: {
          type: 'boolean',
          default: true,
          description: 'When false, only Services asking for one of its addresses get one from this pool.',
        },
        avoidBuggyIPs: {
          type: 'boolean',
          default: false,
          description: 'Skip addresses ending in .0 and .255.',
        },
        serviceSelector: labelSelectorSchema(
          'Only Services whose labels match may use this pool; absent means every Service.',
        ),
        namespaceSelector: labelSelectorSchema(
          'Only Services in namespaces whose labels match may use this pool; absent means every namespace.',
        ),
        priority: {
          type: 'integer',
          format: 'int32',
          minimum: 0,
          default: 0,
          description: 'Pools a Service matches are tried in ascending priority (0 first).',
        },
      },
    },
    status: {
      type: 'object',
      description: 'What the controller-manager last observed about the pool.',
      properties: {
        capacity: {
          type: 'integer',
          format: 'int64',
          minimum: 0,
          description: 'Addresses in the pool after avoidBuggyIPs (saturates at 2^53-1).',
        },
        allocated: {
          type: 'integer',
          format: 'int64',
          minimum: 0,
          description: 'Addresses assigned to Services.',
        },
        conditions: {
          type: 'array',
          description: 'Ready and Exhausted conditions.',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['type'],
          items: conditionSchema,
        },
      },
    },
  },
};

/** The CustomResourceDefinition object the chart installs from `crds/`. */
export const LOAD_BALANCER_IP_POOL_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: {
    name: `${LOAD_BALANCER_IP_POOL_PLURAL}.${PORTICO_GROUP}`,
    labels: { 'app.kubernetes.io/name': 'portico' },
  },
  spec: {
    group: PORTICO_GROUP,
    scope: 'Cluster',
    names: {
      kind: LOAD_BALANCER_IP_POOL_KIND,
      listKind: `${LOAD_BALANCER_IP_POOL_KIND}List`,
      plural: LOAD_BALANCER_IP_POOL_PLURAL,
      singular: 'loadbalancerippool',
      shortNames: ['lbpool'],
      categories: ['portico'],
    },
    versions: [
      {
        name: LOAD_BALANCER_IP_POOL_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
          { name: 'Auto Assign', type: 'boolean', jsonPath: '.spec.autoAssign' },
          { name: 'Priority', type: 'integer', jsonPath: '.spec.priority' },
          { name: 'Allocated', type: 'integer', jsonPath: '.status.allocated' },
          { name: 'Capacity', type: 'integer', jsonPath: '.status.capacity' },
          {
            name: 'Ready',
            type: 'string',
            jsonPath: '.status.conditions[?(@.type=="Ready")].status',
          },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: { openAPIV3Schema: LOAD_BALANCER_IP_POOL_SCHEMA },
      },
    ],
  },
} as const;
