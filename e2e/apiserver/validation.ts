/**
 * Validation of metadata (names, labels, annotations) and of the core fields controllers depend on,
 * with causes worded as kube-apiserver words them so a 422 reads the same as on a real cluster.
 */

import { validateCustomResource } from './crd-schema.ts';
import type { StatusCause } from './errors.ts';
import type { JsonObject } from './patch.ts';
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const TOTAL_ANNOTATION_SIZE = 256 * 1024;

function invalidValue(field: string, value: unknown, why: string): StatusCause {
  return {
    reason: 'FieldValueInvalid',
    field,
    message: `Invalid value: ${JSON.stringify(value ?? null)}: ${why}`,
  };
}

function required(field: string, why = ''): StatusCause {
  return {
    reason: 'FieldValueRequired',
    field,
    message: why === '' ? 'Required value' : `Required value: ${why}`,
  };
}

function notSupported(field: string, value: unknown, allowed: string[]): StatusCause {
  return {
    reason: 'FieldValueNotSupported',
    field,
    message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
  };
}

function nameCauses(name: string, field: string, style: 'label' | 'dns1035' | 'subdomain'): StatusCause[] {
  if (style === 'dns1035') {
    if (name.length > 63) return [invalidValue(field, name, 'must be no more than 63 characters')];
    if (!DNS1035_LABEL.test(name)) {
      return [
        invalidValue(
          field,
          name,
          "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
      ];
    }
    return [];
  }
  if (style === 'label') {
    if (name.length > 63) return [invalidValue(field, name, 'must be no more than 63 characters')];
    if (!DNS1123_LABEL.test(name)) {
      return [
        invalidValue(
          field,
          name,
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
      ];
    }
    return [];
  }
  if (name.length > 253) return [invalidValue(field, name, 'must be no more than 253 characters')];
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return [
      invalidValue(
        field,
        name,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      ),
    ];
  }
  return [];
}

/** Causes for a label or annotation key (a qualified name with an optional DNS prefix). */
export function qualifiedNameCauses(key: string, field: string): StatusCause[] {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const causes: StatusCause[] = [];
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    causes.push(
      invalidValue(
        field,
        key,
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
      ),
    );
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    causes.push(
      invalidValue(
        field,
        key,
        name.length > 63
          ? 'name part must be no more than 63 characters'
          : "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
      ),
    );
  }
  return causes;
}

function nameStyle(resource: ResourceType): 'label' | 'dns1035' | 'subdomain' {
  if (resource.custom !== undefined) return 'subdomain';
  if (resource.group === '' && resource.plural === 'services') return 'dns1035';
  if (resource.group === '' && resource.plural === 'namespaces') return 'label';
  return 'subdomain';
}

/** Causes for the metadata of an object about to be stored. */
export function validateMetadata(resource: ResourceType, object: JsonObject): StatusCause[] {
  const meta = object.metadata as JsonObject;
  const causes: StatusCause[] = [];
  const name = meta.name;
  if (typeof name !== 'string' || name === '')
    causes.push(required('metadata.name', 'name or generateName is required'));
  else causes.push(...nameCauses(name, 'metadata.name', nameStyle(resource)));
  const labels = meta.labels;
  if (labels !== undefined && labels !== null) {
    if (!isObject(labels)) causes.push(invalidValue('metadata.labels', labels, 'must be a map of strings'));
    else {
      for (const [key, value] of Object.entries(labels)) {
        causes.push(...qualifiedNameCauses(key, 'metadata.labels'));
        if (typeof value !== 'string')
          causes.push(invalidValue('metadata.labels', value, 'must be a string'));
        else if (value.length > 63)
          causes.push(invalidValue('metadata.labels', value, 'must be no more than 63 characters'));
        else if (!LABEL_VALUE.test(value)) {
          causes.push(
            invalidValue(
              'metadata.labels',
              value,
              "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
          );
        }
      }
    }
  }
  const annotations = meta.annotations;
  if (annotations !== undefined && annotations !== null) {
    if (!isObject(annotations))
      causes.push(invalidValue('metadata.annotations', annotations, 'must be a map of strings'));
    else {
      let size = 0;
      for (const [key, value] of Object.entries(annotations)) {
        causes.push(...qualifiedNameCauses(key.toLowerCase(), 'metadata.annotations'));
        if (typeof value !== 'string')
          causes.push(invalidValue('metadata.annotations', value, 'must be a string'));
        else size += key.length + value.length;
      }
      if (size > TOTAL_ANNOTATION_SIZE) {
        causes.push({
          reason: 'FieldValueTooLong',
          field: 'metadata.annotations',
          message: `Too long: may not be more than ${TOTAL_ANNOTATION_SIZE} bytes`,
        });
      }
    }
  }
  return causes;
}

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

function validateService(spec: JsonObject): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!SERVICE_TYPES.includes(String(spec.type)))
    causes.push(notSupported('spec.type', spec.type, SERVICE_TYPES));
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  const headless = spec.clusterIP === 'None';
  if (ports.length === 0 && spec.type !== 'ExternalName' && !headless) causes.push(required('spec.ports'));
  const names = new Set<string>();
  ports.forEach((port: unknown, i: number) => {
    const field = `spec.ports[${i}]`;
    if (!isObject(port)) return;
    const p = port.port;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
      causes.push(invalidValue(`${field}.port`, p, 'must be between 1 and 65535, inclusive'));
    }
    if (!PROTOCOLS.includes(String(port.protocol)))
      causes.push(notSupported(`${field}.protocol`, port.protocol, PROTOCOLS));
    if (ports.length > 1 && (port.name === undefined || port.name === ''))
      causes.push(required(`${field}.name`));
    if (typeof port.name === 'string' && port.name !== '') {
      if (names.has(port.name))
        causes.push({
          reason: 'FieldValueDuplicate',
          field: `${field}.name`,
          message: `Duplicate value: "${port.name}"`,
        });
      names.add(port.name);
    }
    const nodePort = port.nodePort;
    if (
      nodePort !== undefined &&
      nodePort !== 0 &&
      (spec.type === 'ClusterIP' || spec.type === 'ExternalName')
    ) {
      causes.push({
        reason: 'FieldValueForbidden',
        field: `${field}.nodePort`,
        message: "Forbidden: may not be used when `type` is 'ClusterIP'",
      });
    }
  });
  return causes;
}

function validatePodSpec(spec: unknown, field: string): StatusCause[] {
  if (!isObject(spec)) return [required(field)];
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  if (containers.length === 0) return [required(`${field}.containers`)];
  const causes: StatusCause[] = [];
  containers.forEach((c: unknown, i: number) => {
    if (!isObject(c)) return;
    if (typeof c.name !== 'string' || c.name === '') causes.push(required(`${field}.containers[${i}].name`));
    if (typeof c.image !== 'string' || c.image === '')
      causes.push(required(`${field}.containers[${i}].image`));
  });
  return causes;
}

function validateWorkload(spec: unknown): StatusCause[] {
  if (!isObject(spec)) return [required('spec')];
  const selector = spec.selector;
  if (!isObject(selector)) return [required('spec.selector')];
  const causes = validatePodSpec(
    isObject(spec.template) ? spec.template.spec : undefined,
    'spec.template.spec',
  );
  const template = isObject(spec.template) ? spec.template : {};
  const labels =
    isObject(template.metadata) && isObject(template.metadata.labels) ? template.metadata.labels : {};
  const matchLabels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  if (Object.entries(matchLabels).some(([k, v]) => labels[k] !== v)) {
    causes.push(
      invalidValue('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'),
    );
  }
  return causes;
}

function validateCrd(object: JsonObject): StatusCause[] {
  const spec = isObject(object.spec) ? object.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  const causes: StatusCause[] = [];
  if (typeof spec.group !== 'string' || spec.group === '') causes.push(required('spec.group'));
  if (typeof names.plural !== 'string' || names.plural === '') causes.push(required('spec.names.plural'));
  if (typeof names.kind !== 'string' || names.kind === '') causes.push(required('spec.names.kind'));
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster')
    causes.push(notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
  if (versions.length === 0) causes.push(required('spec.versions'));
  else if (versions.filter((v) => v.storage === true).length !== 1) {
    causes.push(
      invalidValue(
        'spec.versions',
        versions.map((v) => v.name),
        'must have exactly one version marked as storage version',
      ),
    );
  }
  const name = (object.metadata as JsonObject).name;
  const expected = `${String(names.plural)}.${String(spec.group)}`;
  if (causes.length === 0 && name !== expected) {
    causes.push(invalidValue('metadata.name', name, `must be spec.names.plural+"."+spec.group`));
  }
  return causes;
}

const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];

function validateEndpointSlice(object: JsonObject): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!ADDRESS_TYPES.includes(String(object.addressType))) {
    causes.push(
      object.addressType === undefined
        ? required('addressType')
        : notSupported('addressType', object.addressType, ADDRESS_TYPES),
    );
  }
  const endpoints = Array.isArray(object.endpoints) ? object.endpoints : [];
  if (endpoints.length > 1000)
    causes.push({
      reason: 'FieldValueTooMany',
      field: 'endpoints',
      message: `Too many: ${endpoints.length}: must have at most 1000 items`,
    });
  endpoints.forEach((endpoint: unknown, i: number) => {
    const addresses = isObject(endpoint) && Array.isArray(endpoint.addresses) ? endpoint.addresses : [];
    if (addresses.length === 0)
      causes.push(required(`endpoints[${i}].addresses`, 'must contain at least 1 address'));
    if (addresses.length > 100)
      causes.push({
        reason: 'FieldValueTooMany',
        field: `endpoints[${i}].addresses`,
        message: `Too many: ${addresses.length}: must have at most 100 items`,
      });
  });
  const ports = Array.isArray(object.ports) ? object.ports : [];
  ports.forEach((port: unknown, i: number) => {
    if (isObject(port) && port.protocol !== undefined && !PROTOCOLS.includes(String(port.protocol))) {
      causes.push(notSupported(`ports[${i}].protocol`, port.protocol, PROTOCOLS));
    }
  });
  return causes;
}

/** Causes for the kind-specific fields of an object (a custom resource: its CRD schema). */
export function validateObject(resource: ResourceType, object: JsonObject): StatusCause[] {
  if (resource.custom !== undefined) return validateCustomResource(object, resource.custom.schema);
  const key = `${resource.group}/${resource.kind}`;
  if (key === 'apiextensions.k8s.io/CustomResourceDefinition') return validateCrd(object);
  if (key === 'discovery.k8s.io/EndpointSlice') return validateEndpointSlice(object);
  if (key === '/Service') return isObject(object.spec) ? validateService(object.spec) : [required('spec')];
  if (key === '/Pod') return validatePodSpec(object.spec, 'spec');
  if (key === 'apps/Deployment' || key === 'apps/ReplicaSet' || key === 'apps/DaemonSet')
    return validateWorkload(object.spec);
  return [];
}

/** Causes for changes an update may not make (a Service's clusterIP is immutable once set). */
export function validateUpdate(resource: ResourceType, next: JsonObject, current: JsonObject): StatusCause[] {
  if (resource.custom !== undefined || resource.group !== '' || resource.plural !== 'services') return [];
  const spec = isObject(next.spec) ? next.spec : {};
  const old = isObject(current.spec) ? current.spec : {};
  if (spec.type === 'ExternalName' || old.type === 'ExternalName') return [];
  if (typeof old.clusterIP === 'string' && old.clusterIP !== '' && spec.clusterIP !== old.clusterIP) {
    return [invalidValue('spec.clusterIPs[0]', spec.clusterIP, 'may not change once set')];
  }
  return [];
}
