import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { type EndpointValidationOptions, validateEndpointSlice, validateEndpoints } from './endpoints.ts';
import { formatFieldError } from './field-errors.ts';

const clusterIPs = new Map([
  ['10.96.0.1', 'default/kubernetes'],
  ['fd00:10:96::1', 'default/kubernetes'],
]);
const options: EndpointValidationOptions = { isClusterIP: (ip) => clusterIPs.get(ip) ?? false };

/** The seed's selector-less example: 192.0.2.42:9376. */
function endpoints(): V1Endpoints {
  return {
    metadata: { name: 'my-service' },
    subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9376, protocol: 'TCP' }] }],
  };
}

function slice(): V1EndpointSlice {
  return {
    metadata: { name: 'my-service-1' },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['192.0.2.42'], hostname: 'pod-a' }],
    ports: [{ name: 'http', port: 9376, protocol: 'TCP' }],
  };
}

function withAddress(ip: string): () => V1Endpoints {
  return () => {
    const object = endpoints();
    object.subsets![0]!.addresses = [{ ip }];
    return object;
  };
}

const loopback = 'may not be in the loopback range (127.0.0.0/8, ::1/128)';
const linkLocal = 'may not be in the link-local range (169.254.0.0/16, fe80::/10)';
const multicast = 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)';
const addressPath = 'subsets[0].addresses[0].ip';

const endpointsRows: { name: string; object: () => V1Endpoints; expected: string[] }[] = [
  { name: 'the seed example is admitted', object: endpoints, expected: [] },
  {
    name: 'loopback IPv4',
    object: withAddress('127.0.0.1'),
    expected: [`${addressPath}: Invalid value: "127.0.0.1": ${loopback}`],
  },
  {
    name: 'loopback IPv6',
    object: withAddress('::1'),
    expected: [`${addressPath}: Invalid value: "::1": ${loopback}`],
  },
  {
    name: 'link-local IPv4 (cloud metadata)',
    object: withAddress('169.254.169.254'),
    expected: [`${addressPath}: Invalid value: "169.254.169.254": ${linkLocal}`],
  },
  {
    name: 'link-local IPv6',
    object: withAddress('fe80::1'),
    expected: [`${addressPath}: Invalid value: "fe80::1": ${linkLocal}`],
  },
  {
    name: 'link-local multicast IPv4',
    object: withAddress('224.0.0.251'),
    expected: [`${addressPath}: Invalid value: "224.0.0.251": ${multicast}`],
  },
  {
    name: 'link-local multicast IPv6',
    object: withAddress('ff02::fb'),
    expected: [`${addressPath}: Invalid value: "ff02::fb": ${multicast}`],
  },
  {
    name: "another Service's ClusterIP",
    object: withAddress('10.96.0.1'),
    expected: [
      `${addressPath}: Invalid value: "10.96.0.1": may not be the ClusterIP of Service "default/kubernetes"`,
    ],
  },
  {
    name: 'not an IP',
    object: withAddress('my-pod'),
    expected: [
      `${addressPath}: Invalid value: "my-pod": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
      `${addressPath}: Invalid value: "my-pod": must be a valid IP address`,
    ],
  },
  {
    name: 'leading zeros',
    object: withAddress('192.0.2.042'),
    expected: [`${addressPath}: Invalid value: "192.0.2.042": must not have leading 0s`],
  },
  {
    name: 'not-ready addresses are checked too',
    object: () => {
      const object = endpoints();
      object.subsets![0]!.notReadyAddresses = [{ ip: '127.0.0.2' }];
      return object;
    },
    expected: [`subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.2": ${loopback}`],
  },
  {
    name: 'a subset needs addresses',
    object: () => ({
      metadata: { name: 'my-service' },
      subsets: [{ ports: [{ port: 80, protocol: 'TCP' }] }],
    }),
    expected: ['subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`'],
  },
  {
    name: 'several ports are named',
    object: () => {
      const object = endpoints();
      object.subsets![0]!.ports = [
        { port: 80, protocol: 'TCP' },
        { name: 'https', port: 443, protocol: 'TCP' },
      ];
      return object;
    },
    expected: ['subsets[0].ports[0].name: Required value'],
  },
  {
    name: 'ports are numbered and use a known protocol',
    object: () => {
      const object = endpoints();
      object.subsets![0]!.ports = [{ port: 0, protocol: 'ICMP' }];
      return object;
    },
    expected: [
      'subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
      'subsets[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ],
  },
  {
    name: 'hostnames are DNS-1123 labels',
    object: () => {
      const object = endpoints();
      object.subsets![0]!.addresses![0]!.hostname = 'pod.a';
      return object;
    },
    expected: ['subsets[0].addresses[0].hostname: Invalid value: "pod.a": must not contain dots'],
  },
];

describe('validateEndpoints', () => {
  for (const row of endpointsRows) {
    test(row.name, () =>
      assert.deepEqual(validateEndpoints(row.object(), options).map(formatFieldError), row.expected),
    );
  }

  test('a lookup that only says yes gives the anonymous message', () => {
    const errors = validateEndpoints(endpoints(), { isClusterIP: () => true }).map(formatFieldError);
    assert.deepEqual(errors, [
      `${addressPath}: Invalid value: "192.0.2.42": may not be the ClusterIP of a Service`,
    ]);
  });
});

function sliceWith(change: (object: V1EndpointSlice) => void): () => V1EndpointSlice {
  return () => {
    const object = slice();
    change(object);
    return object;
  };
}

const sliceRows: { name: string; object: () => V1EndpointSlice; expected: string[] }[] = [
  { name: 'an IPv4 slice is admitted', object: slice, expected: [] },
  {
    name: 'an IPv6 slice is admitted',
    object: sliceWith((s) => {
      s.addressType = 'IPv6';
      s.endpoints = [{ addresses: ['2001:db8::42'] }];
    }),
    expected: [],
  },
  {
    name: 'an FQDN slice is admitted',
    object: sliceWith((s) => {
      s.addressType = 'FQDN';
      s.endpoints = [{ addresses: ['backend.example.com'] }];
    }),
    expected: [],
  },
  {
    name: 'addressType is required',
    object: sliceWith((s) => {
      s.addressType = '';
    }),
    expected: ['addressType: Required value'],
  },
  {
    name: 'addressType is IPv4, IPv6 or FQDN',
    object: sliceWith((s) => {
      s.addressType = 'IP';
    }),
    expected: ['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'],
  },
  {
    name: 'addresses match the address type',
    object: sliceWith((s) => {
      s.endpoints = [{ addresses: ['2001:db8::42'] }];
    }),
    expected: ['endpoints[0].addresses[0]: Invalid value: "2001:db8::42": must be a valid IPv4 address'],
  },
  {
    name: 'loopback in a slice',
    object: sliceWith((s) => {
      s.endpoints = [{ addresses: ['127.0.0.1'] }];
    }),
    expected: [`endpoints[0].addresses[0]: Invalid value: "127.0.0.1": ${loopback}`],
  },
  {
    name: 'link-local IPv6 in a slice',
    object: sliceWith((s) => {
      s.addressType = 'IPv6';
      s.endpoints = [{ addresses: ['fe80::5'] }];
    }),
    expected: [`endpoints[0].addresses[0]: Invalid value: "fe80::5": ${linkLocal}`],
  },
  {
    name: 'a ClusterIP in a slice',
    object: sliceWith((s) => {
      s.addressType = 'IPv6';
      s.endpoints = [{ addresses: ['fd00:10:96::1'] }];
    }),
    expected: [
      'endpoints[0].addresses[0]: Invalid value: "fd00:10:96::1": may not be the ClusterIP of Service "default/kubernetes"',
    ],
  },
  {
    name: 'an endpoint needs an address',
    object: sliceWith((s) => {
      s.endpoints = [{ addresses: [] }];
    }),
    expected: ['endpoints[0].addresses: Required value: must contain at least 1 address'],
  },
  {
    name: 'an endpoint holds at most 100 addresses',
    object: sliceWith((s) => {
      s.endpoints = [{ addresses: Array.from({ length: 101 }, (_, i) => `10.1.0.${i + 1}`) }];
    }),
    expected: ['endpoints[0].addresses: Too many: 101: must have at most 100 items'],
  },
  {
    name: 'a slice holds at most 1000 endpoints',
    object: sliceWith((s) => {
      s.endpoints = Array.from({ length: 1001 }, () => ({ addresses: ['10.1.0.1'] }));
    }),
    expected: ['endpoints: Too many: 1001: must have at most 1000 items'],
  },
  {
    name: 'FQDN addresses have two labels',
    object: sliceWith((s) => {
      s.addressType = 'FQDN';
      s.endpoints = [{ addresses: ['localhost'] }];
    }),
    expected: [
      'endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots',
    ],
  },
  {
    name: 'hostnames are DNS-1123 labels',
    object: sliceWith((s) => {
      s.endpoints![0]!.hostname = 'Pod-A';
    }),
    expected: [
      "endpoints[0].hostname: Invalid value: \"Pod-A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    ],
  },
  {
    name: 'port names are unique',
    object: sliceWith((s) => {
      s.ports!.push({ name: 'http', port: 9377, protocol: 'TCP' });
    }),
    expected: ['ports[1].name: Duplicate value: "http"'],
  },
  {
    name: 'a port needs a protocol, and a known one',
    object: sliceWith((s) => {
      s.ports = [
        { name: 'a', port: 1 },
        { name: 'b', port: 2, protocol: 'ICMP' },
      ];
    }),
    expected: [
      'ports[0].protocol: Required value',
      'ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ],
  },
  {
    name: 'a slice holds at most 100 ports',
    object: sliceWith((s) => {
      s.ports = Array.from({ length: 101 }, (_, i) => ({ name: `p${i}`, port: 1000 + i, protocol: 'TCP' }));
    }),
    expected: ['ports: Too many: 101: must have at most 100 items'],
  },
];

describe('validateEndpointSlice', () => {
  for (const row of sliceRows) {
    test(row.name, () =>
      assert.deepEqual(validateEndpointSlice(row.object(), options).map(formatFieldError), row.expected),
    );
  }
});
