/**
 * Label, annotation and finalizer names shared by Portico's controllers and agent.
 *
 * Keys that Kubernetes itself defines keep their upstream spelling, because kubectl, kube-proxy and
 * other tools read them; values that identify Portico as the writer use the `portico.dev` domain so
 * they never collide with kube-controller-manager's own controllers running beside us.
 */

/** Label on an EndpointSlice naming the Service it belongs to (`discovery.k8s.io/v1` LabelServiceName). */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';

/** Label on an EndpointSlice naming the controller that owns and writes it. */
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';

/** Portico's value for {@link LABEL_MANAGED_BY} on slices written by the EndpointSlice controller. */
export const MANAGED_BY_ENDPOINTSLICE_CONTROLLER = 'endpointslice-controller.portico.dev';

/** Portico's value for {@link LABEL_MANAGED_BY} on slices mirrored from user-written Endpoints. */
export const MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER = 'endpointslicemirroring-controller.portico.dev';

/** Upstream kube-controller-manager's managed-by value; Portico never touches slices carrying it. */
export const MANAGED_BY_UPSTREAM_ENDPOINTSLICE_CONTROLLER = 'endpointslice-controller.k8s.io';

/** Upstream's managed-by value for mirrored slices; Portico never touches slices carrying it. */
export const MANAGED_BY_UPSTREAM_MIRRORING_CONTROLLER = 'endpointslicemirroring-controller.k8s.io';

/**
 * Label (value `""`) on Endpoints and EndpointSlices of headless Services; kube-proxy and Portico's
 * agent select it away so headless Services never get proxy rules.
 */
export const LABEL_HEADLESS_SERVICE = 'service.kubernetes.io/headless';

/** Label on a Service that hands it to an alternative service proxy; the default proxy ignores it. */
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';

/** Label on an Endpoints object (value `"true"`) that opts it out of EndpointSlice mirroring. */
export const LABEL_SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';

/** Node label holding the node's topology zone, copied into each endpoint's `zone`. */
export const LABEL_TOPOLOGY_ZONE = 'topology.kubernetes.io/zone';

/** Annotation set on Endpoints truncated at the 1000-address cap. */
export const ANNOTATION_ENDPOINTS_OVER_CAPACITY = 'endpoints.kubernetes.io/over-capacity';

/** The only value {@link ANNOTATION_ENDPOINTS_OVER_CAPACITY} takes. */
export const ENDPOINTS_OVER_CAPACITY_TRUNCATED = 'truncated';

/** Annotation (RFC 3339, nanosecond precision, UTC) with the time of the change that caused a write. */
export const ANNOTATION_LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Annotation marking leader-election records stored as Endpoints; controllers leave those objects alone. */
export const ANNOTATION_LEADER_ELECTION = 'control-plane.alpha.kubernetes.io/leader';

/** kubectl's client-side-apply record; never mirrored from Endpoints onto EndpointSlices. */
export const ANNOTATION_KUBECTL_LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Legacy annotation enabling topology-aware hints (wins over {@link ANNOTATION_TOPOLOGY_MODE}). */
export const ANNOTATION_TOPOLOGY_AWARE_HINTS = 'service.kubernetes.io/topology-aware-hints';

/** Annotation enabling topology-aware routing with value `Auto`. */
export const ANNOTATION_TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode';

/** Finalizer a LoadBalancer controller keeps on a Service until its external resources are released. */
export const FINALIZER_LOAD_BALANCER_CLEANUP = 'service.kubernetes.io/load-balancer-cleanup';

/**
 * Service annotation: comma-separated addresses the Service asks for, at most one per IP family
 * (Portico's spelling of MetalLB's `loadBalancerIPs`; preferred over the deprecated
 * `spec.loadBalancerIP`).
 */
export const ANNOTATION_LOAD_BALANCER_IPS = 'portico.dev/load-balancer-ips';

/** Service annotation: the name of the LoadBalancerIPPool the Service's address must come from. */
export const ANNOTATION_IP_POOL = 'portico.dev/ip-pool';

/**
 * Service annotation: the sharing key. Services with equal keys may share an address when their
 * ports and protocols do not clash and their externalTrafficPolicy is compatible.
 */
export const ANNOTATION_ALLOW_SHARED_IP = 'portico.dev/allow-shared-ip';

/** Portico's default `spec.loadBalancerClass` (`--load-balancer-class`). */
export const DEFAULT_LOAD_BALANCER_CLASS = 'portico.dev/lb';
