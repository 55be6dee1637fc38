import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import { formatFieldError, invalidStatus } from './field-errors.ts';
import {
  defaultService,
  type ServiceValidationOptions,
  validateService,
  validateServiceUpdate,
} from './service.ts';

const singleStack: ServiceValidationOptions = {
  nodePortRange: { base: 30000, size: 2768 },
  serviceCIDRs: ['10.96.0.0/12'],
};
const dualStack: ServiceValidationOptions = {
  nodePortRange: { base: 30000, size: 2768 },
  serviceCIDRs: ['10.96.0.0/12', 'fd00:10:96::/108'],
};

/** A valid, defaulted ClusterIP Service as an API server hands it to admission. */
function clusterIPService(): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      selector: { app: 'web' },
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
    },
  };
}

function nodePortService(): V1Service {
  const service = clusterIPService();
  Object.assign(service.spec!, { type: 'NodePort', externalTrafficPolicy: 'Cluster' });
  service.spec!.ports![0]!.nodePort = 30080;
  return service;
}

function loadBalancerService(): V1Service {
  const service = nodePortService();
  Object.assign(service.spec!, { type: 'LoadBalancer', allocateLoadBalancerNodePorts: true });
  return service;
}

function headlessService(): V1Service {
  const service = clusterIPService();
  Object.assign(service.spec!, { clusterIP: 'None', clusterIPs: ['None'] });
  return service;
}

function externalNameService(): V1Service {
  return {
    metadata: { name: 'db' },
    spec: { type: 'ExternalName', externalName: 'db.example.com.', sessionAffinity: 'None' },
  };
}

function dualStackService(): V1Service {
  const service = clusterIPService();
  Object.assign(service.spec!, {
    clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
    ipFamilies: ['IPv4', 'IPv6'],
    ipFamilyPolicy: 'PreferDualStack',
  });
  return service;
}

function modified(
  base: () => V1Service,
  change: (spec: NonNullable<V1Service['spec']>, service: V1Service) => void,
) {
  return () => {
    const service = base();
    change(service.spec!, service);
    return service;
  };
}

interface CreateRow {
  name: string;
  service: () => V1Service;
  options?: ServiceValidationOptions;
  expected: string[];
}

const nodePortRangeMessage =
  'spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767';
const dns1123LabelMessage =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const createRows: CreateRow[] = [
  { name: 'a ClusterIP Service is admitted', service: clusterIPService, expected: [] },
  { name: 'a NodePort Service is admitted', service: nodePortService, expected: [] },
  { name: 'a LoadBalancer Service is admitted', service: loadBalancerService, expected: [] },
  {
    name: 'a headless Service needs no ports',
    service: modified(headlessService, (spec) => {
      spec.ports = [];
    }),
    expected: [],
  },
  {
    name: 'an ExternalName Service with a trailing dot is admitted',
    service: externalNameService,
    expected: [],
  },
  {
    name: 'a dual-stack Service is admitted on a dual-stack cluster',
    service: dualStackService,
    options: dualStack,
    expected: [],
  },

  // metadata
  {
    name: 'the name must be a DNS-1035 label',
    service: modified(clusterIPService, (_, s) => {
      s.metadata!.name = '1web';
    }),
    expected: [
      `metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    ],
  },
  {
    name: 'the name is required',
    service: modified(clusterIPService, (_, s) => {
      s.metadata = {};
    }),
    expected: ['metadata.name: Required value: name or generateName is required'],
  },
  {
    name: 'topology annotations must agree',
    service: modified(clusterIPService, (_, s) => {
      s.metadata!.annotations = {
        'service.kubernetes.io/topology-mode': 'Auto',
        'service.kubernetes.io/topology-aware-hints': 'Disabled',
      };
    }),
    expected: [
      'metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified',
    ],
  },

  // ports
  {
    name: 'ports are required',
    service: modified(clusterIPService, (spec) => {
      spec.ports = [];
    }),
    expected: ['spec.ports: Required value'],
  },
  {
    name: 'two unnamed ports are denied',
    service: modified(clusterIPService, (spec) => {
      spec.ports = [
        { port: 80, protocol: 'TCP', targetPort: 8080 },
        { port: 443, protocol: 'TCP', targetPort: 8443 },
      ];
    }),
    expected: ['spec.ports[0].name: Required value', 'spec.ports[1].name: Required value'],
  },
  {
    name: 'a single port may be unnamed',
    service: modified(clusterIPService, (spec) => {
      delete spec.ports![0]!.name;
    }),
    expected: [],
  },
  {
    name: 'port names are unique',
    service: modified(clusterIPService, (spec) => {
      spec.ports!.push({ name: 'http', port: 8080, protocol: 'TCP', targetPort: 8080 });
    }),
    expected: ['spec.ports[1].name: Duplicate value: "http"'],
  },
  {
    name: 'port names are DNS-1123 labels',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.name = 'HTTP';
    }),
    expected: [`spec.ports[0].name: Invalid value: "HTTP": ${dns1123LabelMessage}`],
  },
  {
    name: 'port numbers are 1-65535',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.port = 65536;
    }),
    expected: ['spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive'],
  },
  {
    name: 'protocols are TCP, UDP or SCTP',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.protocol = 'ICMP';
    }),
    expected: ['spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'],
  },
  {
    name: 'the protocol is required',
    service: modified(clusterIPService, (spec) => {
      delete spec.ports![0]!.protocol;
    }),
    expected: ['spec.ports[0].protocol: Required value'],
  },
  {
    name: 'a (protocol, port) pair appears once',
    service: modified(clusterIPService, (spec) => {
      spec.ports!.push({ name: 'http2', port: 80, protocol: 'TCP', targetPort: 9090 });
    }),
    expected: [
      'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ],
  },
  {
    name: 'one port number may serve TCP and UDP',
    service: modified(clusterIPService, (spec) => {
      spec.ports = [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ];
    }),
    expected: [],
  },
  {
    name: 'a numeric targetPort is 1-65535',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.targetPort = 70000;
    }),
    expected: ['spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive'],
  },
  {
    name: 'a named targetPort is an IANA service name',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.targetPort = 'http--alt';
    }),
    expected: ['spec.ports[0].targetPort: Invalid value: "http--alt": must not contain consecutive hyphens'],
  },
  {
    name: 'a named targetPort has at most 15 characters',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.targetPort = 'web-frontend-http';
    }),
    expected: [
      'spec.ports[0].targetPort: Invalid value: "web-frontend-http": must be no more than 15 characters',
    ],
  },
  {
    name: 'a named targetPort is admitted',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.targetPort = 'http-web';
    }),
    expected: [],
  },
  {
    name: 'appProtocol is a qualified name',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.appProtocol = 'my proto';
    }),
    expected: [
      `spec.ports[0].appProtocol: Invalid value: "my proto": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    ],
  },

  // node ports
  {
    name: 'nodePort 29999 is outside the default range',
    service: modified(nodePortService, (spec) => {
      spec.ports![0]!.nodePort = 29999;
    }),
    expected: [nodePortRangeMessage],
  },
  {
    name: 'the range in the message follows the options',
    service: modified(nodePortService, (spec) => {
      spec.ports![0]!.nodePort = 20100;
    }),
    options: { ...singleStack, nodePortRange: { base: 20000, size: 100 } },
    expected: [
      'spec.ports[0].nodePort: Invalid value: 20100: provided port is not in the valid range. The range of valid ports is 20000-20099',
    ],
  },
  {
    name: 'the last port of the range is allowed',
    service: modified(nodePortService, (spec) => {
      spec.ports![0]!.nodePort = 32767;
    }),
    expected: [],
  },
  {
    name: 'a nodePort may not be set on a ClusterIP Service',
    service: modified(clusterIPService, (spec) => {
      spec.ports![0]!.nodePort = 30080;
    }),
    expected: ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
  },
  {
    name: 'a nodePort appears once per protocol',
    service: modified(nodePortService, (spec) => {
      spec.ports!.push({ name: 'admin', port: 8080, protocol: 'TCP', targetPort: 8080, nodePort: 30080 });
    }),
    expected: ['spec.ports[1].nodePort: Duplicate value: 30080'],
  },
  {
    name: 'TCP and UDP may share a nodePort',
    service: modified(nodePortService, (spec) => {
      spec.ports = [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53, nodePort: 30053 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53, nodePort: 30053 },
      ];
    }),
    expected: [],
  },
  {
    name: 'the range is checked before the rest, as kube-apiserver allocates before validating',
    service: modified(nodePortService, (spec) => {
      spec.ports = [
        { port: 80, protocol: 'TCP', targetPort: 80, nodePort: 29999 },
        { port: 81, protocol: 'TCP', targetPort: 81 },
      ];
    }),
    expected: [nodePortRangeMessage],
  },

  // type and clusterIP
  {
    name: 'the type is one of four',
    service: modified(clusterIPService, (spec) => {
      spec.type = 'Internal';
    }),
    expected: [
      'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ],
  },
  {
    name: 'the type is required',
    service: modified(clusterIPService, (spec) => {
      delete spec.type;
    }),
    expected: ['spec.type: Required value'],
  },
  {
    name: "'None' is not allowed for NodePort Services",
    service: modified(nodePortService, (spec) => {
      Object.assign(spec, { clusterIP: 'None', clusterIPs: ['None'] });
    }),
    expected: ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort services'],
  },
  {
    name: "'None' is not allowed for LoadBalancer Services",
    service: modified(loadBalancerService, (spec) => {
      Object.assign(spec, { clusterIP: 'None', clusterIPs: ['None'] });
    }),
    expected: [
      'spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for LoadBalancer services',
    ],
  },
  {
    name: "'None' must be the only clusterIP",
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: 'None', clusterIPs: ['None', '10.96.0.10'] });
    }),
    expected: [
      'spec.clusterIPs: Invalid value: []string{"None", "10.96.0.10"}: \'None\' must be the first and only value',
    ],
  },
  {
    name: 'clusterIPs[0] must equal clusterIP',
    service: modified(clusterIPService, (spec) => {
      spec.clusterIPs = ['10.96.0.11'];
    }),
    expected: ['spec.clusterIPs: Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`'],
  },
  {
    name: 'clusterIP without clusterIPs',
    service: modified(clusterIPService, (spec) => {
      delete spec.clusterIPs;
    }),
    expected: ['spec.clusterIPs: Required value'],
  },
  {
    name: 'clusterIPs without clusterIP',
    service: modified(clusterIPService, (spec) => {
      delete spec.clusterIP;
    }),
    expected: [
      'spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: must be empty when `clusterIP` is not specified',
    ],
  },
  {
    name: 'a clusterIP must be an IP',
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: '10.96.0.300', clusterIPs: ['10.96.0.300'] });
    }),
    expected: [
      'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ],
  },
  {
    name: 'a clusterIP may not have leading zeros',
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: '10.96.0.010', clusterIPs: ['10.96.0.010'] });
    }),
    expected: ['spec.clusterIPs[0]: Invalid value: "10.96.0.010": must not have leading 0s'],
  },
  {
    name: 'at most two clusterIPs',
    service: modified(dualStackService, (spec) => {
      spec.clusterIPs!.push('10.96.0.11');
    }),
    options: dualStack,
    expected: [
      'spec.clusterIPs: Invalid value: []string{"10.96.0.10", "fd00:10:96::a", "10.96.0.11"}: may only hold up to 2 values',
    ],
  },
  {
    name: 'two clusterIPs are one per family',
    service: modified(dualStackService, (spec) => {
      spec.clusterIPs = ['10.96.0.10', '10.96.0.11'];
      spec.ipFamilies = ['IPv4'];
    }),
    options: dualStack,
    expected: [
      'spec.clusterIPs: Invalid value: []string{"10.96.0.10", "10.96.0.11"}: may specify no more than one IP for each IP family',
    ],
  },
  {
    name: 'each clusterIP matches its ipFamilies entry',
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: 'fd00:10:96::a', clusterIPs: ['fd00:10:96::a'] });
    }),
    options: dualStack,
    expected: [
      'spec.clusterIPs[0]: Invalid value: "fd00:10:96::a": expected an IPv4 value as indicated by `ipFamilies[0]`',
    ],
  },

  // IP families
  {
    name: 'ipFamilies are IPv4 or IPv6',
    service: modified(clusterIPService, (spec) => {
      spec.ipFamilies = ['IPv5'];
    }),
    expected: ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'],
  },
  {
    name: 'ipFamilies hold no duplicates',
    service: modified(clusterIPService, (spec) => {
      spec.ipFamilies = ['IPv4', 'IPv4'];
      spec.ipFamilyPolicy = 'PreferDualStack';
    }),
    expected: ['spec.ipFamilies[1]: Duplicate value: "IPv4"'],
  },
  {
    name: 'ipFamilyPolicy is one of three',
    service: modified(clusterIPService, (spec) => {
      spec.ipFamilyPolicy = 'DualStack';
    }),
    expected: [
      'spec.ipFamilyPolicy: Unsupported value: "DualStack": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"',
    ],
  },
  {
    name: 'SingleStack holds one IP and one family',
    service: modified(dualStackService, (spec) => {
      spec.ipFamilyPolicy = 'SingleStack';
    }),
    options: dualStack,
    expected: [
      "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
      "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
    ],
  },
  {
    name: 'an absent policy means SingleStack',
    service: modified(dualStackService, (spec) => {
      delete spec.ipFamilyPolicy;
      spec.ipFamilies = ['IPv4'];
    }),
    options: dualStack,
    expected: [
      "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
    ],
  },
  {
    name: 'RequireDualStack needs a dual-stack cluster',
    service: modified(clusterIPService, (spec) => {
      spec.ipFamilyPolicy = 'RequireDualStack';
    }),
    expected: [
      'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services',
    ],
  },
  {
    name: 'RequireDualStack is admitted on a dual-stack cluster',
    service: modified(dualStackService, (spec) => {
      spec.ipFamilyPolicy = 'RequireDualStack';
    }),
    options: dualStack,
    expected: [],
  },
  {
    name: 'a family the cluster does not serve',
    service: modified(clusterIPService, (spec) => {
      delete spec.clusterIP;
      delete spec.clusterIPs;
      spec.ipFamilies = ['IPv6'];
    }),
    expected: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
  },
  {
    name: 'a clusterIP of a family the cluster does not serve',
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: 'fd00::a', clusterIPs: ['fd00::a'], ipFamilies: [] });
    }),
    expected: [
      'spec.clusterIPs[0]: Invalid value: []string{"fd00::a"}: IPv6 is not configured on this cluster',
    ],
  },
  {
    name: 'headless without selector may name both families on a single-stack cluster',
    service: modified(headlessService, (spec) => {
      delete spec.selector;
      spec.ipFamilies = ['IPv4', 'IPv6'];
      spec.ipFamilyPolicy = 'RequireDualStack';
    }),
    expected: [],
  },

  // ExternalName
  {
    name: 'ExternalName takes no clusterIPs, families or policy',
    service: modified(externalNameService, (spec) => {
      Object.assign(spec, {
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'SingleStack',
      });
    }),
    expected: [
      'spec.clusterIPs: Forbidden: may not be set for ExternalName services',
      'spec.ipFamilies: Forbidden: may not be set for ExternalName services',
      'spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services',
    ],
  },
  {
    name: 'ExternalName requires externalName',
    service: modified(externalNameService, (spec) => {
      delete spec.externalName;
    }),
    expected: ['spec.externalName: Required value'],
  },
  {
    name: 'externalName is a DNS-1123 subdomain',
    service: modified(externalNameService, (spec) => {
      spec.externalName = 'db_primary.example.com';
    }),
    expected: [
      "spec.externalName: Invalid value: \"db_primary.example.com\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ],
  },

  // external IPs
  {
    name: 'externalIPs may not be loopback',
    service: modified(clusterIPService, (spec) => {
      spec.externalIPs = ['127.0.0.1'];
      spec.externalTrafficPolicy = 'Cluster';
    }),
    expected: [
      'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ],
  },
  {
    name: 'externalIPs are IPs',
    service: modified(clusterIPService, (spec) => {
      spec.externalIPs = ['198.18.0.10', 'lb.example.com'];
      spec.externalTrafficPolicy = 'Cluster';
    }),
    expected: [
      'spec.externalIPs[1]: Invalid value: "lb.example.com": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ],
  },
  {
    name: 'externalIPs may not be unspecified',
    service: modified(clusterIPService, (spec) => {
      spec.externalIPs = ['0.0.0.0'];
      spec.externalTrafficPolicy = 'Cluster';
    }),
    expected: ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'],
  },

  // LoadBalancer fields
  {
    name: 'loadBalancerSourceRanges only for LoadBalancer',
    service: modified(nodePortService, (spec) => {
      spec.loadBalancerSourceRanges = ['10.0.0.0/8'];
    }),
    expected: ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"],
  },
  {
    name: 'loadBalancerSourceRanges are CIDRs',
    service: modified(loadBalancerService, (spec) => {
      spec.loadBalancerSourceRanges = [' 10.0.0.0/8 ', '10.0.0.0/33', '192.168.1.1/24'];
    }),
    expected: [
      'spec.LoadBalancerSourceRanges[1]: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      'spec.LoadBalancerSourceRanges[2]: Invalid value: "192.168.1.1/24": must not have bits set beyond the prefix length',
    ],
  },
  {
    name: 'the legacy source-ranges annotation has the same rules',
    service: modified(loadBalancerService, (_, s) => {
      s.metadata!.annotations = {
        'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8, office',
      };
    }),
    expected: [
      'metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: "office": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ],
  },
  {
    name: 'allocateLoadBalancerNodePorts only for LoadBalancer',
    service: modified(nodePortService, (spec) => {
      spec.allocateLoadBalancerNodePorts = false;
    }),
    expected: [
      "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'",
    ],
  },
  {
    name: 'allocateLoadBalancerNodePorts is required for LoadBalancer (upstream omits spec. here)',
    service: modified(loadBalancerService, (spec) => {
      delete spec.allocateLoadBalancerNodePorts;
    }),
    expected: ['allocateLoadBalancerNodePorts: Required value'],
  },
  {
    name: 'loadBalancerClass only for LoadBalancer',
    service: modified(clusterIPService, (spec) => {
      spec.loadBalancerClass = 'example.com/portico';
    }),
    expected: ["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"],
  },
  {
    name: 'loadBalancerClass is a qualified name',
    service: modified(loadBalancerService, (spec) => {
      spec.loadBalancerClass = 'example.com/';
    }),
    expected: [
      'spec.loadBalancerClass: Invalid value: "example.com/": name part must be non-empty',
      `spec.loadBalancerClass: Invalid value: "example.com/": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    ],
  },

  // session affinity
  {
    name: 'sessionAffinity is ClientIP or None',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinity = 'Sticky';
    }),
    expected: ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'],
  },
  {
    name: 'sessionAffinity is required',
    service: modified(clusterIPService, (spec) => {
      delete spec.sessionAffinity;
    }),
    expected: ['spec.sessionAffinity: Required value'],
  },
  {
    name: 'ClientIP needs its config',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinity = 'ClientIP';
    }),
    expected: ['spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP'],
  },
  {
    name: 'ClientIP timeout 0 is too short',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinity = 'ClientIP';
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 0 } };
    }),
    expected: [
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400',
    ],
  },
  {
    name: 'ClientIP timeout 86401 is too long',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinity = 'ClientIP';
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 86401 } };
    }),
    expected: [
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400',
    ],
  },
  {
    name: 'ClientIP timeout 86400 is allowed',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinity = 'ClientIP';
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 86400 } };
    }),
    expected: [],
  },
  {
    name: 'None takes no affinity config',
    service: modified(clusterIPService, (spec) => {
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 60 } };
    }),
    expected: ['spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None'],
  },

  // traffic policies
  {
    name: 'externalTrafficPolicy only for externally accessible Services',
    service: modified(clusterIPService, (spec) => {
      spec.externalTrafficPolicy = 'Local';
    }),
    expected: [
      'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services',
    ],
  },
  {
    name: 'externalTrafficPolicy is required for NodePort',
    service: modified(nodePortService, (spec) => {
      delete spec.externalTrafficPolicy;
    }),
    expected: ['spec.externalTrafficPolicy: Required value'],
  },
  {
    name: 'externalTrafficPolicy is Cluster or Local',
    service: modified(nodePortService, (spec) => {
      spec.externalTrafficPolicy = 'Global';
    }),
    expected: [
      'spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", "Local"',
    ],
  },
  {
    name: 'internalTrafficPolicy is required',
    service: modified(clusterIPService, (spec) => {
      delete spec.internalTrafficPolicy;
    }),
    expected: ['spec.internalTrafficPolicy: Required value'],
  },
  {
    name: 'internalTrafficPolicy is Cluster or Local',
    service: modified(clusterIPService, (spec) => {
      spec.internalTrafficPolicy = 'Node';
    }),
    expected: ['spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"'],
  },
  {
    name: 'healthCheckNodePort only for LoadBalancer with Local policy',
    service: modified(nodePortService, (spec) => {
      spec.healthCheckNodePort = 30100;
    }),
    expected: [
      "spec.healthCheckNodePort: Invalid value: 30100: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
    ],
  },
  {
    name: 'healthCheckNodePort is required for LoadBalancer with Local policy',
    service: modified(loadBalancerService, (spec) => {
      spec.externalTrafficPolicy = 'Local';
    }),
    expected: ['spec.healthCheckNodePort: Required value'],
  },
  {
    name: 'a LoadBalancer with Local policy and a health-check port is admitted',
    service: modified(loadBalancerService, (spec) => {
      spec.externalTrafficPolicy = 'Local';
      spec.healthCheckNodePort = 30100;
    }),
    expected: [],
  },
  {
    name: 'trafficDistribution values',
    service: modified(clusterIPService, (spec) => {
      spec.trafficDistribution = 'PreferFar';
    }),
    expected: [
      'spec.trafficDistribution: Unsupported value: "PreferFar": supported values: "PreferClose", "PreferSameNode", "PreferSameZone"',
    ],
  },
  {
    name: 'trafficDistribution PreferSameNode is admitted',
    service: modified(clusterIPService, (spec) => {
      spec.trafficDistribution = 'PreferSameNode';
    }),
    expected: [],
  },

  // selector
  {
    name: 'selector values are label values',
    service: modified(clusterIPService, (spec) => {
      spec.selector = { app: 'web server' };
    }),
    expected: [
      "spec.selector: Invalid value: \"web server\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ],
  },
];

describe('validateService (CREATE)', () => {
  for (const row of createRows) {
    test(row.name, () => {
      const errors = validateService(row.service(), row.options ?? singleStack);
      assert.deepEqual(errors.map(formatFieldError), row.expected);
    });
  }

  test('the Status for two unnamed ports reads as kubectl shows it', () => {
    const service = modified(clusterIPService, (spec) => {
      spec.ports = [
        { port: 80, protocol: 'TCP', targetPort: 80 },
        { port: 81, protocol: 'TCP', targetPort: 81 },
      ];
    })();
    const status = invalidStatus(
      { group: '', kind: 'Service' },
      'web',
      validateService(service, singleStack),
    );
    assert.equal(
      status.message,
      'Service "web" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]',
    );
    assert.equal(status.code, 422);
  });
});

interface UpdateRow {
  name: string;
  old: () => V1Service;
  service: () => V1Service;
  options?: ServiceValidationOptions;
  expected: string[];
}

const updateRows: UpdateRow[] = [
  {
    name: 'an unchanged Service is admitted',
    old: clusterIPService,
    service: clusterIPService,
    expected: [],
  },
  {
    name: 'the clusterIP may not change',
    old: clusterIPService,
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.11'] });
    }),
    expected: ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set'],
  },
  {
    name: 'the primary clusterIP may not be unset',
    old: clusterIPService,
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: '', clusterIPs: [] });
    }),
    expected: ['spec.clusterIPs[0]: Invalid value: []string{}: primary clusterIP can not be unset'],
  },
  {
    name: 'a ClusterIP Service may not become headless',
    old: clusterIPService,
    service: modified(clusterIPService, (spec) => {
      Object.assign(spec, { clusterIP: 'None', clusterIPs: ['None'] });
    }),
    expected: ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set'],
  },
  {
    name: 'moving to ExternalName drops the IPs',
    old: clusterIPService,
    service: externalNameService,
    expected: [],
  },
  {
    name: 'leaving ExternalName takes a new IP',
    old: externalNameService,
    service: modified(clusterIPService, (_, s) => {
      s.metadata!.name = 'db';
    }),
    expected: [],
  },
  {
    name: 'upgrade to dual-stack keeps the primary',
    old: clusterIPService,
    service: modified(dualStackService, (spec) => {
      spec.ipFamilyPolicy = 'RequireDualStack';
    }),
    options: dualStack,
    expected: [],
  },
  {
    name: 'upgrade may not change the primary',
    old: clusterIPService,
    service: modified(dualStackService, (spec) => {
      Object.assign(spec, { clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12', 'fd00:10:96::a'] });
      spec.ipFamilyPolicy = 'RequireDualStack';
    }),
    options: dualStack,
    expected: [
      'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.12", "fd00:10:96::a"}: may not change once set',
    ],
  },
  {
    name: 'downgrade needs SingleStack',
    old: dualStackService,
    service: modified(dualStackService, (spec) => {
      spec.clusterIPs = ['10.96.0.10'];
      spec.ipFamilies = ['IPv4'];
    }),
    options: dualStack,
    expected: [
      'spec.ipFamilyPolicy: Invalid value: "PreferDualStack": must be \'SingleStack\' to release the secondary cluster IP',
      'spec.ipFamilyPolicy: Invalid value: "PreferDualStack": must be \'SingleStack\' to release the secondary IP family',
    ],
  },
  {
    name: 'downgrade with SingleStack is admitted',
    old: dualStackService,
    service: modified(dualStackService, (spec) => {
      spec.clusterIPs = ['10.96.0.10'];
      spec.ipFamilies = ['IPv4'];
      spec.ipFamilyPolicy = 'SingleStack';
    }),
    options: dualStack,
    expected: [],
  },
  {
    name: 'the primary family may not change',
    old: clusterIPService,
    service: modified(clusterIPService, (spec) => {
      delete spec.clusterIP;
      delete spec.clusterIPs;
      spec.ipFamilies = ['IPv6'];
    }),
    options: dualStack,
    expected: [
      'spec.clusterIPs[0]: Invalid value: []string(nil): primary clusterIP can not be unset',
      'spec.ipFamilies[0]: Invalid value: []core.IPFamily{"IPv6"}: may not change once set',
    ],
  },
  {
    name: 'an unchanged PreferDualStack Service survives the cluster dropping a family',
    old: dualStackService,
    service: dualStackService,
    expected: [],
  },
  {
    name: 'a changed PreferDualStack Service is checked against the cluster',
    old: dualStackService,
    service: modified(dualStackService, (spec) => {
      spec.ports![0]!.port = 8080;
      spec.type = 'NodePort';
      spec.externalTrafficPolicy = 'Cluster';
    }),
    expected: ['spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster'],
  },
  {
    name: 'headless Services may change families',
    old: headlessService,
    service: modified(headlessService, (spec) => {
      spec.ipFamilies = ['IPv6'];
    }),
    options: dualStack,
    expected: [],
  },
  {
    name: 'loadBalancerClass is immutable while the type stays LoadBalancer',
    old: modified(loadBalancerService, (spec) => {
      spec.loadBalancerClass = 'example.com/a';
    }),
    service: modified(loadBalancerService, (spec) => {
      spec.loadBalancerClass = 'example.com/b';
    }),
    expected: ['spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set'],
  },
  {
    name: 'loadBalancerClass may go with a type change',
    old: modified(loadBalancerService, (spec) => {
      spec.loadBalancerClass = 'example.com/a';
    }),
    service: nodePortService,
    expected: [],
  },
  {
    name: 'healthCheckNodePort is immutable while it is needed',
    old: modified(loadBalancerService, (spec) => {
      spec.externalTrafficPolicy = 'Local';
      spec.healthCheckNodePort = 30100;
    }),
    service: modified(loadBalancerService, (spec) => {
      spec.externalTrafficPolicy = 'Local';
      spec.healthCheckNodePort = 30101;
    }),
    expected: ['spec.healthCheckNodePort: Forbidden: field is immutable'],
  },
  {
    name: 'a nodePort the Service already holds is kept even outside a narrowed range',
    old: nodePortService,
    service: nodePortService,
    options: { ...singleStack, nodePortRange: { base: 31000, size: 100 } },
    expected: [],
  },
  {
    name: 'a new nodePort outside the range is denied',
    old: nodePortService,
    service: modified(nodePortService, (spec) => {
      spec.ports![0]!.nodePort = 29999;
    }),
    expected: [nodePortRangeMessage],
  },
  {
    name: 'a ClusterIP Service becoming NodePort has its nodePort checked',
    old: clusterIPService,
    service: modified(nodePortService, (spec) => {
      spec.ports![0]!.nodePort = 29999;
    }),
    expected: [nodePortRangeMessage],
  },
];

describe('validateServiceUpdate (UPDATE)', () => {
  for (const row of updateRows) {
    test(row.name, () => {
      const errors = validateServiceUpdate(row.service(), row.old(), row.options ?? singleStack);
      assert.deepEqual(errors.map(formatFieldError), row.expected);
    });
  }
});

describe('defaultService', () => {
  test('fills what the API server defaults, and the result validates', () => {
    const service = defaultService({
      metadata: { name: 'web' },
      spec: {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.20',
        selector: { app: 'web' },
        sessionAffinity: 'ClientIP',
        ports: [{ port: 80, nodePort: 30080 }],
      },
    });
    assert.deepEqual(service.spec, {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.20',
      clusterIPs: ['10.96.0.20'],
      selector: { app: 'web' },
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      ports: [{ port: 80, nodePort: 30080, protocol: 'TCP', targetPort: 80 }],
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      allocateLoadBalancerNodePorts: true,
    });
    assert.deepEqual(validateService(service, singleStack), []);
  });

  test('leaves the input untouched and ExternalName without traffic policies', () => {
    const input: V1Service = {
      metadata: { name: 'db' },
      spec: { type: 'ExternalName', externalName: 'db.example.com' },
    };
    const service = defaultService(input);
    assert.deepEqual(input.spec, { type: 'ExternalName', externalName: 'db.example.com' });
    assert.equal(service.spec?.internalTrafficPolicy, undefined);
    assert.deepEqual(validateService(service, singleStack), []);
  });
});
