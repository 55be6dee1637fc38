/**
 * Validation of user-written Endpoints and EndpointSlices (those of selector-less Services), with
 * Kubernetes' rules and messages, plus one rule Kubernetes documents but does not enforce: an
 * endpoint may not be another Service's ClusterIP, because kube-proxy does not route a virtual IP
 * to a virtual IP.
 */

import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { duplicate, type FieldError, invalid, notSupported, required, tooMany } from './field-errors.ts';
import {
  isValidIPForLegacyField,
  isValidIPv4Address,
  isValidIPv6Address,
  validateNonSpecialIP,
} from './ip.ts';
import { invalidEach, isDNS1123Label, isDNS1123Subdomain, isQualifiedName, isValidPortNum } from './names.ts';

/**
 * Tells whether an address is a Service's ClusterIP: false, or true or the owning Service's
 * `namespace/name` (which the message then names).
 */
export type ClusterIPLookup = (ip: string) => boolean | string;

/** What endpoint validation needs to know about the cluster. */
export interface EndpointValidationOptions {
  /** Looks an address up among the ClusterIPs in use. */
  readonly isClusterIP: ClusterIPLookup;
}

const protocols = ['SCTP', 'TCP', 'UDP'];
const addressTypes = ['FQDN', 'IPv4', 'IPv6'];
const maxEndpointsPerSlice = 1000;
const maxAddressesPerEndpoint = 100;
const maxPortsPerSlice = 100;

function validateNotClusterIP(field: string, ip: string, options: EndpointValidationOptions): FieldError[] {
  const owner = options.isClusterIP(ip);
  if (owner === false) return [];
  const detail =
    owner === true
      ? 'may not be the ClusterIP of a Service'
      : `may not be the ClusterIP of Service "${owner}"`;
  return [invalid(field, ip, detail)];
}

function validateObjectName(name: string | undefined): FieldError[] {
  if (!name) return [required('metadata.name', 'name or generateName is required')];
  return invalidEach('metadata.name', name, isDNS1123Subdomain(name));
}

/**
 * Validates an Endpoints object: every subset has addresses, each address is a valid IP that is
 * neither special (unspecified, loopback, link-local) nor a ClusterIP, ports are named when there
 * are several, numbered 1-65535 and use TCP, UDP or SCTP.
 */
export function validateEndpoints(endpoints: V1Endpoints, options: EndpointValidationOptions): FieldError[] {
  const errors = validateObjectName(endpoints.metadata?.name);
  for (const [s, subset] of (endpoints.subsets ?? []).entries()) {
    const subsetPath = `subsets[${s}]`;
    const addresses = subset.addresses ?? [];
    const notReady = subset.notReadyAddresses ?? [];
    if (addresses.length === 0 && notReady.length === 0)
      errors.push(required(subsetPath, 'must specify `addresses` or `notReadyAddresses`'));
    const groups = [
      ['addresses', addresses],
      ['notReadyAddresses', notReady],
    ] as const;
    for (const [group, list] of groups) {
      for (const [a, address] of list.entries()) {
        const path = `${subsetPath}.${group}[${a}]`;
        const ip = address.ip ?? '';
        errors.push(...isValidIPForLegacyField(`${path}.ip`, ip));
        if (address.hostname)
          errors.push(...invalidEach(`${path}.hostname`, address.hostname, isDNS1123Label(address.hostname)));
        if (address.nodeName !== undefined)
          errors.push(
            ...invalidEach(`${path}.nodeName`, address.nodeName, isDNS1123Subdomain(address.nodeName)),
          );
        const special = validateNonSpecialIP(`${path}.ip`, ip);
        errors.push(...special);
        if (special.length === 0) errors.push(...validateNotClusterIP(`${path}.ip`, ip, options));
      }
    }
    const ports = subset.ports ?? [];
    for (const [p, port] of ports.entries()) {
      const path = `${subsetPath}.ports[${p}]`;
      const name = port.name ?? '';
      if (ports.length > 1 && name === '') errors.push(required(`${path}.name`));
      else if (name !== '') errors.push(...invalidEach(`${path}.name`, name, isDNS1123Label(name)));
      for (const message of isValidPortNum(port.port))
        errors.push(invalid(`${path}.port`, port.port, message));
      if (!port.protocol) errors.push(required(`${path}.protocol`));
      else if (!protocols.includes(port.protocol))
        errors.push(notSupported(`${path}.protocol`, port.protocol, protocols));
      if (port.appProtocol !== undefined)
        errors.push(
          ...invalidEach(`${path}.appProtocol`, port.appProtocol, isQualifiedName(port.appProtocol)),
        );
    }
  }
  return errors;
}

function validateSliceAddress(
  field: string,
  address: string,
  addressType: string,
  options: EndpointValidationOptions,
): FieldError[] {
  if (addressType === 'FQDN') {
    const name = address.replace(/\.$/, '');
    if (name === '') return [required(field)];
    const reasons = isDNS1123Subdomain(name);
    if (reasons.length > 0) return [invalid(field, name, reasons.join(','))];
    if (name.split('.').length < 2)
      return [invalid(field, name, 'should be a domain with at least two segments separated by dots')];
    for (const label of name.split('.')) {
      const labelReasons = isDNS1123Label(label);
      if (labelReasons.length > 0) return [invalid(field, label, labelReasons.join(','))];
    }
    return [];
  }
  if (addressType !== 'IPv4' && addressType !== 'IPv6') return [];
  const familyErrors =
    addressType === 'IPv4' ? isValidIPv4Address(field, address) : isValidIPv6Address(field, address);
  if (familyErrors.length > 0) return familyErrors;
  const errors = [...isValidIPForLegacyField(field, address), ...validateNonSpecialIP(field, address)];
  if (errors.length === 0) errors.push(...validateNotClusterIP(field, address, options));
  return errors;
}

/**
 * Validates an EndpointSlice: addressType IPv4, IPv6 or FQDN; at most 1000 endpoints of 1 to 100
 * addresses each, every address of the slice's type and, for IP types, neither special nor a
 * ClusterIP; at most 100 ports with unique DNS-1123 names and TCP, UDP or SCTP.
 */
export function validateEndpointSlice(
  slice: V1EndpointSlice,
  options: EndpointValidationOptions,
): FieldError[] {
  const errors = validateObjectName(slice.metadata?.name);
  const addressType = slice.addressType ?? '';
  if (addressType === '') errors.push(required('addressType'));
  else if (!addressTypes.includes(addressType))
    errors.push(notSupported('addressType', addressType, addressTypes));
  const endpoints = slice.endpoints ?? [];
  if (endpoints.length > maxEndpointsPerSlice) {
    errors.push(tooMany('endpoints', endpoints.length, maxEndpointsPerSlice));
  } else {
    for (const [e, endpoint] of endpoints.entries()) {
      const path = `endpoints[${e}]`;
      const addresses = endpoint.addresses ?? [];
      if (addresses.length === 0)
        errors.push(required(`${path}.addresses`, 'must contain at least 1 address'));
      else if (addresses.length > maxAddressesPerEndpoint)
        errors.push(tooMany(`${path}.addresses`, addresses.length, maxAddressesPerEndpoint));
      for (const [a, address] of addresses.entries())
        errors.push(...validateSliceAddress(`${path}.addresses[${a}]`, address, addressType, options));
      if (endpoint.hostname !== undefined)
        errors.push(...invalidEach(`${path}.hostname`, endpoint.hostname, isDNS1123Label(endpoint.hostname)));
    }
  }
  const ports = slice.ports ?? [];
  if (ports.length > maxPortsPerSlice) {
    errors.push(tooMany('ports', ports.length, maxPortsPerSlice));
    return errors;
  }
  const names = new Set<string>();
  for (const [p, port] of ports.entries()) {
    const path = `ports[${p}]`;
    const name = port.name ?? '';
    if (name !== '') errors.push(...invalidEach(`${path}.name`, name, isDNS1123Label(name)));
    if (names.has(name)) errors.push(duplicate(`${path}.name`, name));
    else names.add(name);
    if (!port.protocol) errors.push(required(`${path}.protocol`));
    else if (!protocols.includes(port.protocol))
      errors.push(notSupported(`${path}.protocol`, port.protocol, protocols));
    if (port.appProtocol !== undefined)
      errors.push(...invalidEach(`${path}.appProtocol`, port.appProtocol, isQualifiedName(port.appProtocol)));
  }
  return errors;
}
