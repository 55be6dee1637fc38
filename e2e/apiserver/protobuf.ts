/**
 * Decoding of the Kubernetes protobuf envelope for the kinds kubectl's imperative commands create
 * (`kubectl create namespace|configmap|secret|serviceaccount|deployment`, `kubectl run`,
 * `kubectl expose`) and for the DeleteOptions of typed deletes (helm's release Secrets): client-go
 * sends those bodies as protobuf and has no JSON fallback. Responses stay JSON, which client-go
 * accepts.
 *
 * Only the fields such requests carry are described. A field outside the schema that carries data
 * makes the whole body unsupported (415) rather than silently dropped, so a flag this decoder does not
 * know can never lose what the user asked for.
 */

import type { JsonObject } from './patch.ts';

/** The magic prefix of a Kubernetes protobuf body. */
const MAGIC = [0x6b, 0x38, 0x73, 0x00];

type FieldType =
  | 'string'
  | 'bytes'
  | 'int'
  | 'bool'
  | 'message'
  | 'stringMap'
  | 'bytesMap'
  | 'quantityMap'
  | 'time'
  | 'intOrString';

interface FieldSpec {
  name: string;
  type: FieldType;
  repeated?: boolean;
  message?: Schema;
  /** A Go pointer field: its zero value is meaningful and kept (non-pointer zeros are omitted like omitempty). */
  pointer?: boolean;
}

type Schema = Record<number, FieldSpec>;

const TIME: Schema = { 1: { name: 'seconds', type: 'int' }, 2: { name: 'nanos', type: 'int' } };

const OWNER_REFERENCE: Schema = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool' },
  7: { name: 'blockOwnerDeletion', type: 'bool' },
};

const OBJECT_META: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  8: { name: 'creationTimestamp', type: 'time' },
  11: { name: 'labels', type: 'stringMap' },
  12: { name: 'annotations', type: 'stringMap' },
  13: { name: 'ownerReferences', type: 'message', repeated: true, message: OWNER_REFERENCE },
  14: { name: 'finalizers', type: 'string', repeated: true },
};

const OBJECT_REFERENCE: Schema = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'namespace', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'fieldPath', type: 'string' },
};

const metadata: FieldSpec = { name: 'metadata', type: 'message', message: OBJECT_META };

const LABEL_SELECTOR: Schema = {
  1: { name: 'matchLabels', type: 'stringMap' },
};

const CONTAINER: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'image', type: 'string' },
  3: { name: 'command', type: 'string', repeated: true },
  4: { name: 'args', type: 'string', repeated: true },
  6: {
    name: 'ports',
    type: 'message',
    repeated: true,
    message: {
      1: { name: 'name', type: 'string' },
      2: { name: 'hostPort', type: 'int' },
      3: { name: 'containerPort', type: 'int' },
      4: { name: 'protocol', type: 'string' },
    },
  },
  7: {
    name: 'env',
    type: 'message',
    repeated: true,
    message: { 1: { name: 'name', type: 'string' }, 2: { name: 'value', type: 'string' } },
  },
  8: {
    name: 'resources',
    type: 'message',
    message: { 1: { name: 'limits', type: 'quantityMap' }, 2: { name: 'requests', type: 'quantityMap' } },
  },
  14: { name: 'imagePullPolicy', type: 'string' },
  16: { name: 'stdin', type: 'bool' },
  17: { name: 'stdinOnce', type: 'bool' },
  18: { name: 'tty', type: 'bool' },
};

const POD_SPEC: Schema = {
  2: { name: 'containers', type: 'message', repeated: true, message: CONTAINER },
  3: { name: 'restartPolicy', type: 'string' },
  6: { name: 'dnsPolicy', type: 'string' },
  8: { name: 'serviceAccountName', type: 'string' },
};

const POD_TEMPLATE: Schema = {
  1: metadata,
  2: { name: 'spec', type: 'message', message: POD_SPEC },
};

/**
 * meta.k8s.io/v1 DeleteOptions, the body client-go's typed clients send with DELETE (helm purges
 * its release Secrets this way). Every field is a Go pointer or a list, so zeros are kept.
 */
const DELETE_OPTIONS: Schema = {
  1: { name: 'gracePeriodSeconds', type: 'int', pointer: true },
  2: {
    name: 'preconditions',
    type: 'message',
    message: { 1: { name: 'uid', type: 'string' }, 2: { name: 'resourceVersion', type: 'string' } },
  },
  3: { name: 'orphanDependents', type: 'bool', pointer: true },
  4: { name: 'propagationPolicy', type: 'string', pointer: true },
  5: { name: 'dryRun', type: 'string', repeated: true },
  6: { name: 'ignoreStoreReadErrorWithClusterBreakingPotential', type: 'bool', pointer: true },
};

/** Schemas of the top-level kinds, by `<apiVersion>/<kind>`. */
const KINDS: Record<string, Schema> = {
  'v1/ConfigMap': {
    1: metadata,
    2: { name: 'data', type: 'stringMap' },
    3: { name: 'binaryData', type: 'bytesMap' },
    4: { name: 'immutable', type: 'bool', pointer: true },
  },
  'v1/Secret': {
    1: metadata,
    2: { name: 'data', type: 'bytesMap' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'stringMap' },
    5: { name: 'immutable', type: 'bool', pointer: true },
  },
  'v1/Namespace': {
    1: metadata,
    2: {
      name: 'spec',
      type: 'message',
      message: { 1: { name: 'finalizers', type: 'string', repeated: true } },
    },
  },
  'v1/Pod': {
    1: metadata,
    2: { name: 'spec', type: 'message', message: POD_SPEC },
  },
  'apps/v1/Deployment': {
    1: metadata,
    2: {
      name: 'spec',
      type: 'message',
      message: {
        1: { name: 'replicas', type: 'int', pointer: true },
        2: { name: 'selector', type: 'message', message: LABEL_SELECTOR },
        3: { name: 'template', type: 'message', message: POD_TEMPLATE },
        4: { name: 'strategy', type: 'message', message: { 1: { name: 'type', type: 'string' } } },
      },
    },
  },
  'v1/Service': {
    1: metadata,
    2: {
      name: 'spec',
      type: 'message',
      message: {
        1: {
          name: 'ports',
          type: 'message',
          repeated: true,
          message: {
            1: { name: 'name', type: 'string' },
            2: { name: 'protocol', type: 'string' },
            3: { name: 'port', type: 'int' },
            4: { name: 'targetPort', type: 'intOrString' },
            5: { name: 'nodePort', type: 'int' },
          },
        },
        2: { name: 'selector', type: 'stringMap' },
        3: { name: 'clusterIP', type: 'string' },
        4: { name: 'type', type: 'string' },
        5: { name: 'externalIPs', type: 'string', repeated: true },
        7: { name: 'sessionAffinity', type: 'string' },
        8: { name: 'loadBalancerIP', type: 'string' },
        10: { name: 'externalName', type: 'string' },
      },
    },
  },
  'v1/ServiceAccount': {
    1: metadata,
    2: { name: 'secrets', type: 'message', repeated: true, message: OBJECT_REFERENCE },
    3: {
      name: 'imagePullSecrets',
      type: 'message',
      repeated: true,
      message: { 1: { name: 'name', type: 'string' } },
    },
    4: { name: 'automountServiceAccountToken', type: 'bool', pointer: true },
  },
};

/** A field as read off the wire. */
interface WireField {
  number: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

function readFields(buf: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const byte = buf[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const number = tag >>> 3;
    switch (tag & 7) {
      case 0:
        fields.push({ number, varint: varint() });
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const length = Number(varint());
        if (pos + length > buf.length) throw new Error('truncated field');
        fields.push({ number, bytes: buf.subarray(pos, pos + length) });
        pos += length;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
  }
  return fields;
}

const utf8 = new TextDecoder();

/** Whether a field holds anything but zero values, looking into nested messages. */
function carriesData(field: WireField): boolean {
  if (field.varint !== undefined) return field.varint !== 0n;
  if (field.bytes === undefined || field.bytes.length === 0) return false;
  try {
    return readFields(field.bytes).some(carriesData);
  } catch {
    return true;
  }
}

function decodeMapEntry(bytes: Uint8Array): [string, Uint8Array] {
  let key = '';
  let value: Uint8Array = new Uint8Array();
  for (const f of readFields(bytes)) {
    if (f.number === 1 && f.bytes) key = utf8.decode(f.bytes);
    if (f.number === 2 && f.bytes) value = f.bytes;
  }
  return [key, value];
}

function decodeMessage(bytes: Uint8Array, schema: Schema): JsonObject {
  const result: JsonObject = {};
  for (const field of readFields(bytes)) {
    const spec = schema[field.number];
    if (!spec) {
      // Zero scalars and messages of only zero values carry nothing (status: {phase: ""}, an unset
      // strategy); anything else would be lost.
      if (!carriesData(field)) continue;
      throw new UnsupportedProtobuf(`field ${field.number} is not decoded here`);
    }
    let value: unknown;
    switch (spec.type) {
      case 'string':
        value = utf8.decode(field.bytes ?? new Uint8Array());
        break;
      case 'bytes':
        value = Buffer.from(field.bytes ?? new Uint8Array()).toString('base64');
        break;
      case 'int':
        value = Number(BigInt.asIntN(64, field.varint ?? 0n));
        break;
      case 'bool':
        value = field.varint !== 0n;
        break;
      case 'message':
        value = decodeMessage(field.bytes ?? new Uint8Array(), spec.message!);
        break;
      case 'time': {
        const time = decodeMessage(field.bytes ?? new Uint8Array(), TIME);
        value =
          typeof time.seconds === 'number' && time.seconds > 0
            ? new Date(time.seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
            : undefined;
        break;
      }
      case 'intOrString': {
        const parts = readFields(field.bytes ?? new Uint8Array());
        const isString = parts.some((p) => p.number === 1 && p.varint === 1n);
        value = isString
          ? utf8.decode(parts.find((p) => p.number === 3)?.bytes ?? new Uint8Array())
          : Number(parts.find((p) => p.number === 2)?.varint ?? 0n);
        break;
      }
      case 'quantityMap': {
        const [key, raw] = decodeMapEntry(field.bytes ?? new Uint8Array());
        const quantity = readFields(raw).find((p) => p.number === 1)?.bytes;
        const map = (result[spec.name] as Record<string, string> | undefined) ?? {};
        map[key] = utf8.decode(quantity ?? new Uint8Array());
        result[spec.name] = map;
        continue;
      }
      case 'stringMap':
      case 'bytesMap': {
        const [key, raw] = decodeMapEntry(field.bytes ?? new Uint8Array());
        const map = (result[spec.name] as Record<string, string> | undefined) ?? {};
        map[key] = spec.type === 'stringMap' ? utf8.decode(raw) : Buffer.from(raw).toString('base64');
        result[spec.name] = map;
        continue;
      }
    }
    // Go omits empty strings, zero numbers and false from JSON (omitempty); proto2 still sends them.
    const zero = value === '' || value === 0 || value === false;
    if (value === undefined || (!spec.repeated && !spec.pointer && zero)) continue;
    if (spec.repeated) {
      const list = (result[spec.name] as unknown[] | undefined) ?? [];
      list.push(value);
      result[spec.name] = list;
    } else {
      result[spec.name] = value;
    }
  }
  return result;
}

/** The reason a protobuf body cannot be decoded, for the 415 the server answers with. */
export class UnsupportedProtobuf extends Error {}

/**
 * Decodes a `application/vnd.kubernetes.protobuf` body into the JSON object it stands for.
 * Throws {@link UnsupportedProtobuf} for kinds without a schema here, and Error for malformed bodies.
 */
export function decodeKubernetesProtobuf(body: Uint8Array): JsonObject {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b))
    throw new Error('missing the k8s protobuf prefix');
  let apiVersion = '';
  let kind = '';
  let raw: Uint8Array = new Uint8Array();
  for (const field of readFields(body.subarray(MAGIC.length))) {
    if (field.number === 1 && field.bytes) {
      for (const meta of readFields(field.bytes)) {
        if (meta.number === 1 && meta.bytes) apiVersion = utf8.decode(meta.bytes);
        if (meta.number === 2 && meta.bytes) kind = utf8.decode(meta.bytes);
      }
    } else if (field.number === 2 && field.bytes) {
      raw = field.bytes;
    }
  }
  // Every group version registers DeleteOptions and client-go encodes it in the version of the
  // resource's group (helm's Secret deletes carry v1), so its kind alone names its schema.
  const schema = kind === 'DeleteOptions' ? DELETE_OPTIONS : KINDS[`${apiVersion}/${kind}`];
  if (!schema) throw new UnsupportedProtobuf(`${apiVersion}/${kind}`);
  return { apiVersion, kind, ...decodeMessage(raw, schema) };
}
