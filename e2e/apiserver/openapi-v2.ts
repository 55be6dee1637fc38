/**
 * A minimal OpenAPI v2 document at /openapi/v2: the info block and no definitions.
 *
 * kubectl still reads v2 for kinds its v3 check does not cover, notably `kind: List` manifests
 * (`kubectl create -f list.yaml`): it fetches /openapi/v2 in protobuf, fails the command if the
 * server answers 404, and skips client-side validation of kinds the document does not define. The
 * v3 documents declare `fieldValidation`, so the server validates the items (see field-validation.ts).
 */

/** The media type kubectl asks for and upstream answers with. */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';

const TITLE = 'Kubernetes';
const VERSION = 'v1.32.0';

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return bytes;
}

/** A length-delimited protobuf field (wire type 2): strings and embedded messages. */
function lengthDelimited(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(payload.length)]), payload]);
}

/** The document as gnostic's `openapi_v2.Document` message: swagger (1) and info (2: title 1, version 2). */
export function openApiV2Protobuf(): Buffer {
  const info = Buffer.concat([
    lengthDelimited(1, Buffer.from(TITLE)),
    lengthDelimited(2, Buffer.from(VERSION)),
  ]);
  return Buffer.concat([lengthDelimited(1, Buffer.from('2.0')), lengthDelimited(2, info)]);
}

/** The same document in JSON, for clients that do not ask for protobuf. */
export function openApiV2Json(): object {
  return { swagger: '2.0', info: { title: TITLE, version: VERSION }, paths: {}, definitions: {} };
}
