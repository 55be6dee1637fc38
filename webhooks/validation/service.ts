/**
 * Kubernetes' Service validation for the validating admission webhook: the rules of
 * `ValidateService`/`ValidateServiceUpdate` (pkg/apis/core/validation) and the checks
 * kube-apiserver makes while allocating (IP family fields, the node-port range), with upstream's
 * field paths and messages.
 *
 * kube-apiserver runs the allocation checks before validation and stops at the first failing
 * stage, so a user sees only the errors of that stage; the functions here keep that order.
 * Objects are expected as an API server hands them to admission, that is defaulted;
 * {@link defaultService} applies the same defaults for servers that do not.
 */

import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import {
  duplicate,
  type FieldError,
  forbidden,
  goQuote,
  goSlice,
  invalid,
  notSupported,
  required,
} from './field-errors.ts';
import {
  type IPFamily,
  ipFamilyOf,
  isValidCIDRForLegacyField,
  isValidIPForLegacyField,
  parseCIDRSloppy,
  validateNonSpecialIP,
} from './ip.ts';
import {
  invalidEach,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidPortName,
  isValidPortNum,
  validateLabels,
} from './names.ts';

/** The node-port range, as `--service-node-port-range` (default 30000-32767: base 30000, size 2768). */
export interface NodePortRange {
  /** The first port of the range. */
  readonly base: number;
  /** How many ports the range holds. */
  readonly size: number;
}

/** Kubernetes' default node-port range, 30000-32767. */
export const defaultNodePortRange: NodePortRange = { base: 30000, size: 2768 };

/** Cluster configuration the validation depends on. */
export interface ServiceValidationOptions {
  /** The range requested nodePorts must fall in. */
  readonly nodePortRange: NodePortRange;
  /** The service CIDRs (one per configured family); tells which IP families the cluster serves. */
  readonly serviceCIDRs: readonly string[];
}

const serviceTypes = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const protocols = ['SCTP', 'TCP', 'UDP'];
const sessionAffinities = ['ClientIP', 'None'];
const trafficPolicies = ['Cluster', 'Local'];
const ipFamilies = ['IPv4', 'IPv6'];
const ipFamilyPolicies = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
const trafficDistributions = ['PreferClose', 'PreferSameNode', 'PreferSameZone'];
const maxClientIPAffinitySeconds = 86400;
const defaultClientIPAffinitySeconds = 10800;

const topologyModeAnnotation = 'service.kubernetes.io/topology-mode';
const topologyHintsAnnotation = 'service.kubernetes.io/topology-aware-hints';
const sourceRangesAnnotation = 'service.beta.kubernetes.io/load-balancer-source-ranges';

function isHeadless(service: V1Service): boolean {
  const clusterIPs = service.spec?.clusterIPs ?? [];
  return clusterIPs.length === 1 && clusterIPs[0] === 'None';
}

/** Type NodePort or LoadBalancer, or a ClusterIP Service with externalIPs (`ExternallyAccessible`). */
function isExternallyAccessible(service: V1Service): boolean {
  const type = service.spec?.type;
  return (
    type === 'LoadBalancer' ||
    type === 'NodePort' ||
    (type === 'ClusterIP' && (service.spec?.externalIPs ?? []).length > 0)
  );
}

/** A LoadBalancer with externalTrafficPolicy Local gets a health-check node port (`NeedsHealthCheck`). */
function needsHealthCheck(service: V1Service): boolean {
  return service.spec?.type === 'LoadBalancer' && service.spec.externalTrafficPolicy === 'Local';
}

function hasNodePorts(service: V1Service): boolean {
  return service.spec?.type === 'NodePort' || service.spec?.type === 'LoadBalancer';
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const left = a ?? [];
  const right = b ?? [];
  return left.length === right.length && left.every((item, i) => item === right[i]);
}

/**
 * Applies the defaults kube-apiserver sets before admission (SetDefaults_Service and the create
 * strategy's clusterIP/clusterIPs normalisation). Returns a new object.
 */
export function defaultService(service: V1Service): V1Service {
  const copy = structuredClone(service);
  const spec = copy.spec ?? {};
  copy.spec = spec;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig ??= {};
    spec.sessionAffinityConfig.clientIP ??= {};
    spec.sessionAffinityConfig.clientIP.timeoutSeconds ??= defaultClientIPAffinitySeconds;
  }
  for (const port of spec.ports ?? []) {
    port.protocol ??= 'TCP';
    if (port.targetPort === undefined || port.targetPort === 0 || port.targetPort === '')
      port.targetPort = port.port;
  }
  if (isExternallyAccessible(copy)) spec.externalTrafficPolicy ??= 'Cluster';
  if (spec.type === 'ClusterIP' || hasNodePorts(copy)) spec.internalTrafficPolicy ??= 'Cluster';
  if (spec.type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;
  if (spec.clusterIP && (spec.clusterIPs ?? []).length === 0) spec.clusterIPs = [spec.clusterIP];
  else if (!spec.clusterIP && spec.clusterIPs?.[0]) spec.clusterIP = spec.clusterIPs[0];
  return copy;
}

/** `ValidateServiceClusterIPsRelatedFields`: clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy on their own. */
function validateClusterIPsRelatedFields(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') return [];
  const errors: FieldError[] = [];
  const clusterIPs = spec.clusterIPs ?? [];
  const families = spec.ipFamilies ?? [];
  const clusterIPsValue = goSlice(spec.clusterIPs);
  if (spec.clusterIP) {
    if (clusterIPs.length === 0) errors.push(required('spec.clusterIPs'));
    else if (clusterIPs[0] !== spec.clusterIP)
      errors.push(invalid('spec.clusterIPs', clusterIPsValue, 'first value must match `clusterIP`'));
  } else if (clusterIPs.length > 0) {
    errors.push(
      invalid('spec.clusterIPs', clusterIPsValue, 'must be empty when `clusterIP` is not specified'),
    );
  }
  const seenFamilies = new Set<string>();
  families.forEach((family, i) => {
    if (!ipFamilies.includes(family)) errors.push(notSupported(`spec.ipFamilies[${i}]`, family, ipFamilies));
    if (seenFamilies.has(family)) errors.push(duplicate(`spec.ipFamilies[${i}]`, family));
    seenFamilies.add(family);
  });
  if (spec.ipFamilyPolicy !== undefined && !ipFamilyPolicies.includes(spec.ipFamilyPolicy))
    errors.push(notSupported('spec.ipFamilyPolicy', spec.ipFamilyPolicy, ipFamilyPolicies));
  let hasInvalidIPs = false;
  clusterIPs.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (clusterIPs.length > 1) {
        hasInvalidIPs = true;
        errors.push(invalid('spec.clusterIPs', clusterIPsValue, "'None' must be the first and only value"));
      }
      return;
    }
    const ipErrors = isValidIPForLegacyField(`spec.clusterIPs[${i}]`, ip);
    if (ipErrors.length > 0) hasInvalidIPs = true;
    errors.push(...ipErrors);
  });
  if (clusterIPs.length > 2)
    errors.push(invalid('spec.clusterIPs', clusterIPsValue, 'may only hold up to 2 values'));
  // A bad address would make the family checks below report nonsense about it.
  if (hasInvalidIPs) return errors;
  if (clusterIPs.length > 1) {
    const found = new Set(clusterIPs.map(ipFamilyOf));
    if (found.size < 2)
      errors.push(
        invalid('spec.clusterIPs', clusterIPsValue, 'may specify no more than one IP for each IP family'),
      );
  }
  if (!isHeadless(service)) {
    clusterIPs.forEach((ip, i) => {
      const family = families[i];
      if (family === undefined) return;
      const actual = ipFamilyOf(ip);
      if (family === 'IPv4' && actual === 'IPv6')
        errors.push(
          invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``),
        );
      if (family === 'IPv6' && actual !== 'IPv6')
        errors.push(
          invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``),
        );
    });
  }
  return errors;
}

function configuredFamilies(serviceCIDRs: readonly string[]): Set<IPFamily> {
  const families = new Set<IPFamily>();
  for (const cidr of serviceCIDRs) {
    const parsed = parseCIDRSloppy(cidr);
    if (parsed !== undefined) families.add(parsed.network.isIPv4 ? 'IPv4' : 'IPv6');
  }
  return families;
}

/**
 * The IP family checks kube-apiserver makes while allocating (`initIPFamilyFields`): the policy
 * against the number of IPs and families, and families against what the cluster is configured for.
 */
function validateIPFamilyFields(
  service: V1Service,
  old: V1Service | undefined,
  options: ServiceValidationOptions,
): FieldError[] {
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') return [];
  const oldSpec = old?.spec;
  // A PreferDualStack Service is never upgraded or downgraded behind the user's back when the cluster
  // gains or loses a family; left as it was, it is not checked against the cluster again.
  if (
    oldSpec !== undefined &&
    oldSpec.type === spec.type &&
    spec.ipFamilyPolicy === 'PreferDualStack' &&
    oldSpec.ipFamilyPolicy === 'PreferDualStack' &&
    sameList(spec.clusterIPs, oldSpec.clusterIPs) &&
    sameList(spec.ipFamilies, oldSpec.ipFamilies)
  )
    return [];
  const headlessSelectorless = spec.clusterIP === 'None' && Object.keys(spec.selector ?? {}).length === 0;
  const policy =
    spec.ipFamilyPolicy ??
    oldSpec?.ipFamilyPolicy ??
    (headlessSelectorless ? 'RequireDualStack' : 'SingleStack');
  const structural = validateClusterIPsRelatedFields(service);
  if (structural.length > 0) return structural;

  const errors: FieldError[] = [];
  let clusterIPs = spec.clusterIPs ?? [];
  let families = spec.ipFamilies ?? [];
  if (oldSpec !== undefined) {
    if (policy === 'SingleStack') {
      // The API server trims to the primary itself when the lists are otherwise unchanged.
      if (sameList(clusterIPs, oldSpec.clusterIPs) && clusterIPs.length > 1)
        clusterIPs = clusterIPs.slice(0, 1);
      if (sameList(families, oldSpec.ipFamilies) && families.length > 1) families = families.slice(0, 1);
    } else {
      if (clusterIPs.length > 0 && clusterIPs.length < (oldSpec.clusterIPs ?? []).length)
        errors.push(
          invalid('spec.ipFamilyPolicy', policy, "must be 'SingleStack' to release the secondary cluster IP"),
        );
      if (families.length > 0 && families.length < (oldSpec.ipFamilies ?? []).length)
        errors.push(
          invalid('spec.ipFamilyPolicy', policy, "must be 'SingleStack' to release the secondary IP family"),
        );
    }
  }
  if (policy === 'SingleStack') {
    if (clusterIPs.length === 2)
      errors.push(
        invalid(
          'spec.ipFamilyPolicy',
          policy,
          "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
        ),
      );
    if (families.length === 2)
      errors.push(
        invalid(
          'spec.ipFamilyPolicy',
          policy,
          "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ),
      );
  }
  const configured = configuredFamilies(options.serviceCIDRs);
  const inferredFamilies = [...families];
  for (const [i, ip] of clusterIPs.entries()) {
    if (ip === 'None') break;
    if (i < inferredFamilies.length) continue;
    const family = ipFamilyOf(ip);
    if (family === undefined) continue;
    if (configured.has(family)) inferredFamilies.push(family);
    else
      errors.push(
        invalid(
          `spec.clusterIPs[${i}]`,
          goSlice(spec.clusterIPs),
          `${family} is not configured on this cluster`,
        ),
      );
  }
  if (errors.length > 0) return errors;
  // Headless without a selector may name both families even on a single-stack cluster: no IPs are allocated.
  if (headlessSelectorless) return [];
  if (policy === 'RequireDualStack' && configured.size < 2)
    errors.push(
      invalid('spec.ipFamilyPolicy', policy, 'this cluster is not configured for dual-stack services'),
    );
  inferredFamilies.forEach((family, i) => {
    if (!configured.has(family as IPFamily))
      errors.push(invalid(`spec.ipFamilies[${i}]`, family, 'not configured on this cluster'));
  });
  return errors;
}

/**
 * Requested nodePorts outside the configured range, as the node-port allocator reports them: the
 * first one only, since allocation stops there. On update, ports the Service already held are kept
 * without a new allocation and so are not checked.
 */
function validateNodePortRange(
  service: V1Service,
  old: V1Service | undefined,
  options: ServiceValidationOptions,
): FieldError[] {
  if (!hasNodePorts(service)) return [];
  const { base, size } = options.nodePortRange;
  const held = new Set(
    old !== undefined && hasNodePorts(old) ? (old.spec?.ports ?? []).map((p) => p.nodePort) : [],
  );
  const ports = service.spec?.ports ?? [];
  for (const [i, port] of ports.entries()) {
    const nodePort = port.nodePort ?? 0;
    if (nodePort === 0 || held.has(nodePort)) continue;
    if (nodePort < base || nodePort >= base + size)
      return [
        invalid(
          `spec.ports[${i}].nodePort`,
          nodePort,
          `provided port is not in the valid range. The range of valid ports is ${base}-${base + size - 1}`,
        ),
      ];
  }
  return [];
}

/** The bad value of a duplicate (protocol, port) pair, printed as Go prints the internal ServicePort key. */
function servicePortKey(protocol: string | undefined, port: number | undefined) {
  return {
    goSyntax:
      `core.ServicePort{Name:"", Protocol:${goQuote(protocol ?? '')}, AppProtocol:(*string)(nil), ` +
      `Port:${port ?? 0}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
  };
}

function validateServicePort(
  port: V1ServicePort,
  requireName: boolean,
  seenNames: Set<string>,
  path: string,
): FieldError[] {
  const errors: FieldError[] = [];
  const name = port.name ?? '';
  if (requireName && name === '') {
    errors.push(required(`${path}.name`));
  } else if (name !== '') {
    errors.push(...invalidEach(`${path}.name`, name, isDNS1123Label(name)));
    if (seenNames.has(name)) errors.push(duplicate(`${path}.name`, name));
    else seenNames.add(name);
  }
  for (const message of isValidPortNum(port.port ?? 0))
    errors.push(invalid(`${path}.port`, port.port ?? 0, message));
  if (!port.protocol) errors.push(required(`${path}.protocol`));
  else if (!protocols.includes(port.protocol))
    errors.push(notSupported(`${path}.protocol`, port.protocol, protocols));
  const targetPort = port.targetPort ?? 0;
  if (typeof targetPort === 'number') {
    for (const message of isValidPortNum(targetPort))
      errors.push(invalid(`${path}.targetPort`, targetPort, message));
  } else {
    errors.push(...invalidEach(`${path}.targetPort`, targetPort, isValidPortName(targetPort)));
  }
  if (port.appProtocol !== undefined)
    errors.push(...invalidEach(`${path}.appProtocol`, port.appProtocol, isQualifiedName(port.appProtocol)));
  return errors;
}

function validateMetadata(service: V1Service): FieldError[] {
  const errors: FieldError[] = [];
  const name = service.metadata?.name ?? '';
  if (name === '') errors.push(required('metadata.name', 'name or generateName is required'));
  else errors.push(...invalidEach('metadata.name', name, isDNS1035Label(name)));
  const annotations = service.metadata?.annotations ?? {};
  const mode = annotations[topologyModeAnnotation];
  const hints = annotations[topologyHintsAnnotation];
  if (mode !== undefined && hints !== undefined && mode !== hints)
    errors.push(
      invalid(
        `metadata.annotations[${topologyModeAnnotation}]`,
        mode,
        `must match annotations[${topologyHintsAnnotation}] when both are specified`,
      ),
    );
  return errors;
}

function validateTypeSpecificFields(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const errors: FieldError[] = [];
  if ((spec.type === 'LoadBalancer' || spec.type === 'NodePort') && isHeadless(service))
    errors.push(invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${spec.type} services`));
  if (spec.type === 'ExternalName') {
    if ((spec.clusterIPs ?? []).length > 0)
      errors.push(forbidden('spec.clusterIPs', 'may not be set for ExternalName services'));
    if ((spec.ipFamilies ?? []).length > 0)
      errors.push(forbidden('spec.ipFamilies', 'may not be set for ExternalName services'));
    if (spec.ipFamilyPolicy !== undefined)
      errors.push(forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services'));
    // A CNAME may end in a dot to mark it fully qualified.
    const cname = (spec.externalName ?? '').replace(/\.$/, '');
    if (cname === '') errors.push(required('spec.externalName'));
    else errors.push(...invalidEach('spec.externalName', cname, isDNS1123Subdomain(cname)));
  }
  return errors;
}

function validateSessionAffinity(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const errors: FieldError[] = [];
  if (!spec.sessionAffinity) errors.push(required('spec.sessionAffinity'));
  else if (!sessionAffinities.includes(spec.sessionAffinity))
    errors.push(notSupported('spec.sessionAffinity', spec.sessionAffinity, sessionAffinities));
  const configPath = 'spec.sessionAffinityConfig';
  const requiredDetail = 'when session affinity type is ClientIP';
  if (spec.sessionAffinity === 'ClientIP') {
    const config = spec.sessionAffinityConfig;
    const timeout = config?.clientIP?.timeoutSeconds;
    if (config === undefined) errors.push(required(configPath, requiredDetail));
    else if (config.clientIP === undefined) errors.push(required(`${configPath}.clientIP`, requiredDetail));
    else if (timeout === undefined)
      errors.push(required(`${configPath}.clientIP.timeoutSeconds`, requiredDetail));
    else if (timeout <= 0 || timeout > maxClientIPAffinitySeconds)
      errors.push(
        invalid(
          `${configPath}.clientIP.timeoutSeconds`,
          timeout,
          `must be greater than 0 and less than ${maxClientIPAffinitySeconds}`,
        ),
      );
  } else if (spec.sessionAffinity === 'None' && spec.sessionAffinityConfig !== undefined) {
    errors.push(forbidden(configPath, 'must not be set when session affinity is None'));
  }
  return errors;
}

function validatePortCollisions(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const ports = spec.ports ?? [];
  const errors: FieldError[] = [];
  if (spec.type === 'ClusterIP') {
    ports.forEach((port, i) => {
      if ((port.nodePort ?? 0) !== 0)
        errors.push(forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
  }
  const nodePorts = new Set<string>();
  ports.forEach((port, i) => {
    const nodePort = port.nodePort ?? 0;
    if (nodePort === 0) return;
    const key = `${port.protocol ?? ''}/${nodePort}`;
    if (nodePorts.has(key)) errors.push(duplicate(`spec.ports[${i}].nodePort`, nodePort));
    nodePorts.add(key);
  });
  const servicePorts = new Set<string>();
  ports.forEach((port, i) => {
    const key = `${port.protocol ?? ''}/${port.port ?? 0}`;
    if (servicePorts.has(key))
      errors.push(duplicate(`spec.ports[${i}]`, servicePortKey(port.protocol, port.port)));
    servicePorts.add(key);
  });
  return errors;
}

function validateLoadBalancerFields(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const isLoadBalancer = spec.type === 'LoadBalancer';
  const errors: FieldError[] = [];
  const lbOnly = "may only be used when `type` is 'LoadBalancer'";
  const ranges = spec.loadBalancerSourceRanges ?? [];
  const annotation = service.metadata?.annotations?.[sourceRangesAnnotation];
  if (ranges.length > 0) {
    // Upstream's path really is capitalised here.
    const path = 'spec.LoadBalancerSourceRanges';
    if (!isLoadBalancer) errors.push(forbidden(path, lbOnly));
    // Space padding is tolerated: the field inherited it from the comma-separated annotation.
    for (const [i, range] of ranges.entries())
      errors.push(...isValidCIDRForLegacyField(`${path}[${i}]`, range.trim()));
  } else if (annotation !== undefined) {
    const path = `metadata.annotations[${sourceRangesAnnotation}]`;
    if (!isLoadBalancer) errors.push(forbidden(path, lbOnly));
    const trimmed = annotation.trim();
    if (trimmed !== '')
      for (const range of trimmed.split(',')) errors.push(...isValidCIDRForLegacyField(path, range.trim()));
  }
  if (spec.allocateLoadBalancerNodePorts !== undefined && !isLoadBalancer)
    errors.push(forbidden('spec.allocateLoadBalancerNodePorts', lbOnly));
  // Upstream reports this one without the `spec.` prefix.
  if (isLoadBalancer && spec.allocateLoadBalancerNodePorts === undefined)
    errors.push(required('allocateLoadBalancerNodePorts'));
  const lbClass = spec.loadBalancerClass;
  if (lbClass !== undefined) {
    if (isLoadBalancer)
      errors.push(...invalidEach('spec.loadBalancerClass', lbClass, isQualifiedName(lbClass)));
    else errors.push(forbidden('spec.loadBalancerClass', lbOnly));
  }
  return errors;
}

function validateTrafficFields(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const errors: FieldError[] = [];
  const etp = spec.externalTrafficPolicy ?? '';
  if (!isExternallyAccessible(service)) {
    if (etp !== '')
      errors.push(
        invalid('spec.externalTrafficPolicy', etp, 'may only be set for externally-accessible services'),
      );
  } else if (etp === '') {
    errors.push(required('spec.externalTrafficPolicy'));
  } else if (!trafficPolicies.includes(etp)) {
    errors.push(notSupported('spec.externalTrafficPolicy', etp, trafficPolicies));
  }
  const healthCheckNodePort = spec.healthCheckNodePort ?? 0;
  if (!needsHealthCheck(service)) {
    if (healthCheckNodePort !== 0)
      errors.push(
        invalid(
          'spec.healthCheckNodePort',
          healthCheckNodePort,
          "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ),
      );
  } else if (healthCheckNodePort === 0) {
    errors.push(required('spec.healthCheckNodePort'));
  } else {
    for (const message of isValidPortNum(healthCheckNodePort))
      errors.push(invalid('spec.healthCheckNodePort', healthCheckNodePort, message));
  }
  const itp = spec.internalTrafficPolicy;
  // Other types are not held to it: upstream did not check it before it went beta.
  if (
    itp === undefined &&
    (spec.type === 'NodePort' || spec.type === 'LoadBalancer' || spec.type === 'ClusterIP')
  )
    errors.push(required('spec.internalTrafficPolicy'));
  if (itp !== undefined && !trafficPolicies.includes(itp))
    errors.push(notSupported('spec.internalTrafficPolicy', itp, trafficPolicies));
  const distribution = spec.trafficDistribution;
  if (distribution !== undefined && !trafficDistributions.includes(distribution))
    errors.push(notSupported('spec.trafficDistribution', distribution, trafficDistributions));
  return errors;
}

/** `ValidateService`: the rules every stored Service satisfies. */
function validateServiceObject(service: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const errors = validateMetadata(service);
  const ports = spec.ports ?? [];
  if (ports.length === 0 && !isHeadless(service) && spec.type !== 'ExternalName')
    errors.push(required('spec.ports'));
  errors.push(...validateTypeSpecificFields(service));
  const seenNames = new Set<string>();
  ports.forEach((port, i) => {
    errors.push(...validateServicePort(port, ports.length > 1, seenNames, `spec.ports[${i}]`));
  });
  if (spec.selector !== undefined) errors.push(...validateLabels(spec.selector, 'spec.selector'));
  errors.push(...validateSessionAffinity(service));
  errors.push(...validateClusterIPsRelatedFields(service));
  (spec.externalIPs ?? []).forEach((ip, i) => {
    const path = `spec.externalIPs[${i}]`;
    const ipErrors = isValidIPForLegacyField(path, ip);
    errors.push(...(ipErrors.length > 0 ? ipErrors : validateNonSpecialIP(path, ip)));
  });
  if (!spec.type) errors.push(required('spec.type'));
  else if (!serviceTypes.includes(spec.type)) errors.push(notSupported('spec.type', spec.type, serviceTypes));
  errors.push(...validatePortCollisions(service));
  errors.push(...validateLoadBalancerFields(service));
  errors.push(...validateTrafficFields(service));
  return errors;
}

/** `validateUpgradeDowngradeClusterIPs`: clusterIPs are immutable apart from adding or dropping the secondary. */
function validateClusterIPsUpdate(service: V1Service, old: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const oldSpec = old.spec ?? {};
  if (spec.type === 'ExternalName' || oldSpec.type === 'ExternalName') return [];
  if (isHeadless(service) && isHeadless(old)) return [];
  const errors: FieldError[] = [];
  const now = spec.clusterIPs ?? [];
  const before = oldSpec.clusterIPs ?? [];
  const value = goSlice(spec.clusterIPs);
  if (before.length === now.length) {
    before.forEach((ip, i) => {
      if (ip !== now[i]) errors.push(invalid(`spec.clusterIPs[${i}]`, value, 'may not change once set'));
    });
  } else if (before.length > now.length) {
    if (now.length === 0)
      errors.push(invalid('spec.clusterIPs[0]', value, 'primary clusterIP can not be unset'));
    if (before.length > 0 && now.length > 0 && now[0] !== before[0])
      errors.push(invalid('spec.clusterIPs[0]', value, 'may not change once set'));
    if (now.length === 1 && spec.ipFamilyPolicy !== 'SingleStack')
      errors.push(
        invalid(
          'spec.ipFamilyPolicy',
          spec.ipFamilyPolicy,
          "must be set to 'SingleStack' when releasing the secondary clusterIP",
        ),
      );
  } else if (before.length > 0 && now[0] !== before[0]) {
    errors.push(invalid('spec.clusterIPs[0]', value, 'may not change once set'));
  }
  return errors;
}

/** `validateUpgradeDowngradeIPFamilies`: the same for ipFamilies; headless Services may change them. */
function validateIPFamiliesUpdate(service: V1Service, old: V1Service): FieldError[] {
  const spec = service.spec ?? {};
  const oldSpec = old.spec ?? {};
  if (spec.type === 'ExternalName' || oldSpec.type === 'ExternalName') return [];
  if (isHeadless(service) || isHeadless(old)) return [];
  const errors: FieldError[] = [];
  const now = spec.ipFamilies ?? [];
  const before = oldSpec.ipFamilies ?? [];
  const familiesValue = goSlice(spec.ipFamilies, 'core.IPFamily');
  // Upstream prints clusterIPs as the bad value of some ipFamilies errors; kept for identical text.
  const clusterIPsValue = goSlice(spec.clusterIPs);
  if (before.length === now.length) {
    before.forEach((family, i) => {
      if (family !== now[i])
        errors.push(invalid('spec.ipFamilies[0]', familiesValue, 'may not change once set'));
    });
  } else if (before.length > now.length) {
    if ((spec.clusterIPs ?? []).length === 0)
      errors.push(invalid('spec.ipFamilies[0]', familiesValue, 'primary ipFamily can not be unset'));
    if (now.length > 0 && now[0] !== before[0])
      errors.push(invalid('spec.ipFamilies[0]', clusterIPsValue, 'may not change once set'));
    if (now.length === 1 && spec.ipFamilyPolicy !== 'SingleStack')
      errors.push(
        invalid(
          'spec.ipFamilyPolicy',
          spec.ipFamilyPolicy,
          "must be set to 'SingleStack' when releasing the secondary ipFamily",
        ),
      );
  } else if (before.length > 0 && now.length > 0 && now[0] !== before[0]) {
    errors.push(invalid('spec.ipFamilies[0]', clusterIPsValue, 'may not change once set'));
  }
  return errors;
}

/**
 * Validates a Service on CREATE. Returns the errors kube-apiserver would report, in its order; an
 * empty list means the Service is admitted.
 */
export function validateService(service: V1Service, options: ServiceValidationOptions): FieldError[] {
  const familyErrors = validateIPFamilyFields(service, undefined, options);
  if (familyErrors.length > 0) return familyErrors;
  const rangeErrors = validateNodePortRange(service, undefined, options);
  if (rangeErrors.length > 0) return rangeErrors;
  return validateServiceObject(service);
}

/**
 * Validates a Service on UPDATE against the stored `old` one: everything {@link validateService}
 * checks, plus the fields that may not change (clusterIPs, ipFamilies, loadBalancerClass while the
 * type stays LoadBalancer, healthCheckNodePort while it is needed). Changing to or from
 * ExternalName lifts the clusterIP and family rules.
 */
export function validateServiceUpdate(
  service: V1Service,
  old: V1Service,
  options: ServiceValidationOptions,
): FieldError[] {
  const familyErrors = validateIPFamilyFields(service, old, options);
  if (familyErrors.length > 0) return familyErrors;
  const rangeErrors = validateNodePortRange(service, old, options);
  if (rangeErrors.length > 0) return rangeErrors;
  const errors = [...validateClusterIPsUpdate(service, old), ...validateIPFamiliesUpdate(service, old)];
  const spec = service.spec ?? {};
  const lbClass = spec.loadBalancerClass;
  if (
    old.spec?.type === 'LoadBalancer' &&
    spec.type === 'LoadBalancer' &&
    old.spec.loadBalancerClass !== lbClass
  )
    errors.push(invalid('spec.loadBalancerClass', lbClass, 'may not change once set'));
  if (
    needsHealthCheck(old) &&
    needsHealthCheck(service) &&
    old.spec?.healthCheckNodePort !== spec.healthCheckNodePort
  )
    errors.push(forbidden('spec.healthCheckNodePort', 'field is immutable'));
  errors.push(...validateServiceObject(service));
  return errors;
}
