import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AdmissionLookups, admit, labelSelectorMatches } from './admission.ts';
import type { AdmissionAttributes } from './registry.ts';
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';

function resourceType(group: string, plural: string): ResourceType {
  const found = BUILTIN_RESOURCES.find((r) => r.group === group && r.plural === plural);
  assert.ok(found, `${group}/${plural} is served`);
  return found;
}

const SERVICES = resourceType('', 'services');
const PODS = resourceType('', 'pods');
const NAMESPACES = resourceType('', 'namespaces');

interface Certificates {
  caPem: string;
  otherCaPem: string;
  keyPem: string;
  certPem: string;
}

/** A CA, a server certificate it signs (127.0.0.1 and webhook.hooks.svc), and an unrelated CA. */
function makeCertificates(dir: string): Certificates {
  const openssl = (...args: string[]): void => {
    execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const subject = (cn: string): string[] => ['-subj', `/CN=${cn}`];
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const selfSignedCA = (name: string, cn: string): void =>
    openssl(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      ...subject(cn),
    );
  selfSignedCA('ca', 'test-ca');
  selfSignedCA('other', 'other-ca');
  openssl('req', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', ...subject('webhook'));
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:webhook.hooks.svc\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-extfile',
    'san.ext',
  );
  const read = (file: string): string => readFileSync(join(dir, file), 'utf8');
  return {
    caPem: read('ca.crt'),
    otherCaPem: read('other.crt'),
    keyPem: read('server.key'),
    certPem: read('server.crt'),
  };
}

interface ReceivedReview {
  path: string;
  review: Record<string, unknown>;
}

type Reply = (request: Record<string, unknown>) => Record<string, unknown> | 'hang';

/** A webhook HTTPS server answering by path; it records every AdmissionReview it receives. */
class WebhookServer {
  readonly received: ReceivedReview[] = [];
  readonly replies = new Map<string, Reply>();
  private server: Server | undefined;
  port = 0;

  async start(certs: Certificates): Promise<void> {
    this.server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        const path = new URL(req.url ?? '/', 'https://x').pathname;
        this.received.push({ path, review });
        const request = review.request as Record<string, unknown>;
        const reply = this.replies.get(path);
        const response = reply === undefined ? { allowed: true } : reply(request);
        if (response === 'hang') return;
        res.setHeader('Content-Type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: request.uid, ...response },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  calls(path: string): ReceivedReview[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const closed = new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

function jsonPatch(ops: unknown[]): { allowed: true; patchType: string; patch: string } {
  return {
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
  };
}

const NO_LOOKUPS: AdmissionLookups = { namespaceLabels: () => ({}) };

function service(name: string, labels: Record<string, string> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', labels },
    spec: { ports: [{ port: 80 }] },
  };
}

function createAttrs(
  object: Record<string, unknown>,
  overrides: Partial<AdmissionAttributes> = {},
): AdmissionAttributes {
  const metadata = object.metadata as { name: string; namespace?: string };
  return {
    operation: 'CREATE',
    resource: SERVICES,
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    object,
    dryRun: false,
    userInfo: { username: 'alice', groups: ['system:authenticated'] },
    ...overrides,
  };
}

describe('admit', () => {
  let dir = '';
  let certs: Certificates;
  const hooks = new WebhookServer();
  let caBundle = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portico-admission-test-'));
    certs = makeCertificates(dir);
    caBundle = Buffer.from(certs.caPem).toString('base64');
    await hooks.start(certs);
  });

  after(async () => {
    await hooks.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function webhook(name: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      name,
      clientConfig: { url: `https://127.0.0.1:${hooks.port}${path}`, caBundle },
      rules: [
        { operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] },
      ],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      ...extra,
    };
  }

  function configuration(kind: string, name: string, webhooks: unknown[]): Record<string, unknown> {
    return { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name }, webhooks };
  }
  const mutating = (name: string, ...webhooks: unknown[]) =>
    configuration('MutatingWebhookConfiguration', name, webhooks);
  const validating = (name: string, ...webhooks: unknown[]) =>
    configuration('ValidatingWebhookConfiguration', name, webhooks);

  test('sends an admission.k8s.io/v1 AdmissionReview describing the request', async () => {
    const path = '/review-shape';
    const before = hooks.calls(path).length;
    const object = service('shape');
    const outcome = await admit(
      createAttrs(object),
      { mutating: [], validating: [validating('v', webhook('shape.example.com', path))] },
      NO_LOOKUPS,
    );
    assert.deepEqual(outcome, { allowed: true, warnings: [], object });
    const calls = hooks.calls(path);
    assert.equal(calls.length, before + 1);
    const review = calls.at(-1)!.review;
    assert.equal(review.apiVersion, 'admission.k8s.io/v1');
    assert.equal(review.kind, 'AdmissionReview');
    const request = review.request as Record<string, unknown>;
    assert.match(String(request.uid), /^[0-9a-f-]{36}$/);
    assert.deepEqual(request.kind, { group: '', version: 'v1', kind: 'Service' });
    assert.deepEqual(request.resource, { group: '', version: 'v1', resource: 'services' });
    assert.deepEqual(request.requestKind, request.kind);
    assert.deepEqual(request.requestResource, request.resource);
    assert.equal(request.name, 'shape');
    assert.equal(request.namespace, 'default');
    assert.equal(request.operation, 'CREATE');
    assert.deepEqual(request.userInfo, { username: 'alice', groups: ['system:authenticated'] });
    assert.deepEqual(request.object, object);
    assert.equal(request.oldObject, null);
    assert.equal(request.dryRun, false);
    assert.deepEqual(request.options, { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' });
  });

  test('applies JSONPatch responses of mutating webhooks in configuration-name order, each seeing the previous result', async () => {
    hooks.replies.set('/add-label', () =>
      jsonPatch([{ op: 'add', path: '/metadata/labels/first', value: 'yes' }]),
    );
    hooks.replies.set('/copy-label', (request) => {
      const labels = (
        (request.object as Record<string, unknown>).metadata as { labels: Record<string, string> }
      ).labels;
      return jsonPatch([
        { op: 'add', path: '/metadata/annotations', value: { 'saw-first': labels.first ?? 'no' } },
      ]);
    });
    const outcome = await admit(
      createAttrs(service('mutated')),
      {
        // Listed out of order on purpose: "a-..." must run before "b-...".
        mutating: [
          mutating('b-second', webhook('copy.example.com', '/copy-label')),
          mutating('a-first', webhook('add.example.com', '/add-label')),
        ],
        validating: [],
      },
      NO_LOOKUPS,
    );
    assert.equal(outcome.allowed, true, JSON.stringify(outcome));
    const metadata = (outcome as { object: { metadata: Record<string, unknown> } }).object.metadata;
    assert.deepEqual(metadata.labels, { first: 'yes' });
    assert.deepEqual(metadata.annotations, { 'saw-first': 'yes' });
  });

  test('validating webhooks see the mutated object', async () => {
    hooks.replies.set('/set-port', () =>
      jsonPatch([{ op: 'replace', path: '/spec/ports/0/port', value: 8080 }]),
    );
    const before = hooks.calls('/observe').length;
    await admit(
      createAttrs(service('observed')),
      {
        mutating: [mutating('m', webhook('port.example.com', '/set-port'))],
        validating: [validating('v', webhook('observe.example.com', '/observe'))],
      },
      NO_LOOKUPS,
    );
    const seen = hooks.calls('/observe').slice(before);
    assert.equal(seen.length, 1);
    const object = (seen[0]!.review.request as { object: { spec: { ports: { port: number }[] } } }).object;
    assert.equal(object.spec.ports[0]!.port, 8080);
  });

  test('a denial returns the webhook status code and upstream phrasing, default 403', async () => {
    hooks.replies.set('/deny', () => ({
      allowed: false,
      status: { message: 'ports below 1024 are reserved' },
    }));
    hooks.replies.set('/deny-422', () => ({
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message: 'spec.ports[0].port: Invalid value: 80',
        details: {
          causes: [
            { reason: 'FieldValueInvalid', field: 'spec.ports[0].port', message: 'Invalid value: 80' },
          ],
        },
      },
    }));
    const denied = await admit(
      createAttrs(service('denied')),
      { mutating: [], validating: [validating('v', webhook('deny.example.com', '/deny'))] },
      NO_LOOKUPS,
    );
    assert.deepEqual(denied, {
      allowed: false,
      code: 403,
      reason: '',
      message: 'admission webhook "deny.example.com" denied the request: ports below 1024 are reserved',
    });
    const invalid = await admit(
      createAttrs(service('denied')),
      { mutating: [mutating('m', webhook('invalid.example.com', '/deny-422'))], validating: [] },
      NO_LOOKUPS,
    );
    assert.deepEqual(invalid, {
      allowed: false,
      code: 422,
      reason: 'Invalid',
      message:
        'admission webhook "invalid.example.com" denied the request: spec.ports[0].port: Invalid value: 80',
      details: {
        causes: [{ reason: 'FieldValueInvalid', field: 'spec.ports[0].port', message: 'Invalid value: 80' }],
      },
    });
  });

  test('a denial without a message says it came without explanation', async () => {
    hooks.replies.set('/deny-silently', () => ({ allowed: false }));
    const outcome = await admit(
      createAttrs(service('silent')),
      { mutating: [], validating: [validating('v', webhook('silent.example.com', '/deny-silently'))] },
      NO_LOOKUPS,
    );
    assert.equal(outcome.allowed, false);
    assert.equal(
      (outcome as { message: string }).message,
      'admission webhook "silent.example.com" denied the request without explanation',
    );
  });

  test('warnings of every webhook are collected', async () => {
    hooks.replies.set('/warn-a', () => ({ allowed: true, warnings: ['first warning'] }));
    hooks.replies.set('/warn-b', () => ({ allowed: true, warnings: ['second warning'] }));
    const outcome = await admit(
      createAttrs(service('warned')),
      {
        mutating: [mutating('m', webhook('warn-a.example.com', '/warn-a'))],
        validating: [validating('v', webhook('warn-b.example.com', '/warn-b'))],
      },
      NO_LOOKUPS,
    );
    assert.equal(outcome.allowed, true);
    assert.deepEqual((outcome as { warnings: string[] }).warnings, ['first warning', 'second warning']);
  });

  test('a dead webhook rejects with 500 under failurePolicy Fail and is skipped under Ignore', async () => {
    const dead = { url: 'https://127.0.0.1:1/dead', caBundle };
    const failing = await admit(
      createAttrs(service('dead')),
      {
        mutating: [mutating('m', webhook('dead.example.com', '/x', { clientConfig: dead }))],
        validating: [],
      },
      NO_LOOKUPS,
    );
    assert.equal(failing.allowed, false);
    assert.equal((failing as { code: number }).code, 500);
    assert.equal((failing as { reason: string }).reason, 'InternalError');
    assert.equal(
      (failing as { message: string }).message,
      'Internal error occurred: failed calling webhook "dead.example.com": failed to call webhook: Post "https://127.0.0.1:1/dead?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused',
    );
    const object = service('dead');
    const ignored = await admit(
      createAttrs(object),
      {
        mutating: [
          mutating('m', webhook('dead.example.com', '/x', { clientConfig: dead, failurePolicy: 'Ignore' })),
        ],
        validating: [
          validating(
            'v',
            webhook('dead-too.example.com', '/x', { clientConfig: dead, failurePolicy: 'Ignore' }),
          ),
        ],
      },
      NO_LOOKUPS,
    );
    assert.deepEqual(ignored, { allowed: true, warnings: [], object });
  });

  test('a webhook slower than timeoutSeconds counts as a failed call', async () => {
    hooks.replies.set('/hang', () => 'hang');
    const started = Date.now();
    const failing = await admit(
      createAttrs(service('slow')),
      {
        mutating: [],
        validating: [validating('v', webhook('slow.example.com', '/hang', { timeoutSeconds: 1 }))],
      },
      NO_LOOKUPS,
    );
    assert.ok(Date.now() - started < 5000, 'the call was cut off near its timeout');
    assert.equal(failing.allowed, false);
    assert.match(
      (failing as { message: string }).message,
      /failed calling webhook "slow.example.com": .*\?timeout=1s": context deadline exceeded$/,
    );
    const ignored = await admit(
      createAttrs(service('slow')),
      {
        mutating: [],
        validating: [
          validating(
            'v',
            webhook('slow.example.com', '/hang', { timeoutSeconds: 1, failurePolicy: 'Ignore' }),
          ),
        ],
      },
      NO_LOOKUPS,
    );
    assert.equal(ignored.allowed, true);
  });

  test('the webhook certificate is verified against caBundle', async () => {
    const before = hooks.calls('/untrusted').length;
    const wrongCa = {
      url: `https://127.0.0.1:${hooks.port}/untrusted`,
      caBundle: Buffer.from(certs.otherCaPem).toString('base64'),
    };
    const outcome = await admit(
      createAttrs(service('tls')),
      {
        mutating: [],
        validating: [validating('v', webhook('tls.example.com', '/untrusted', { clientConfig: wrongCa }))],
      },
      NO_LOOKUPS,
    );
    assert.equal(outcome.allowed, false);
    assert.match(
      (outcome as { message: string }).message,
      /failed calling webhook "tls.example.com": .*tls: failed to verify certificate/,
    );
    assert.equal(hooks.calls('/untrusted').length, before, 'no review reached the untrusted server');
  });

  test('dry run rejects a webhook with sideEffects Unknown without calling it, and calls NoneOnDryRun ones', async () => {
    const before = hooks.calls('/side-effects').length;
    const rejected = await admit(
      createAttrs(service('dry'), { dryRun: true }),
      {
        mutating: [],
        validating: [
          validating(
            'v',
            webhook('effects.example.com', '/side-effects', {
              sideEffects: 'Unknown',
              failurePolicy: 'Ignore',
            }),
          ),
        ],
      },
      NO_LOOKUPS,
    );
    assert.deepEqual(rejected, {
      allowed: false,
      code: 400,
      reason: 'BadRequest',
      message: 'admission webhook "effects.example.com" does not support dry run',
    });
    assert.equal(hooks.calls('/side-effects').length, before);
    const allowed = await admit(
      createAttrs(service('dry'), { dryRun: true }),
      {
        mutating: [],
        validating: [
          validating('v', webhook('effects.example.com', '/side-effects', { sideEffects: 'NoneOnDryRun' })),
        ],
      },
      NO_LOOKUPS,
    );
    assert.equal(allowed.allowed, true);
    const calls = hooks.calls('/side-effects');
    assert.equal(calls.length, before + 1);
    const request = calls.at(-1)!.review.request as { dryRun: boolean; options: { dryRun: string[] } };
    assert.equal(request.dryRun, true);
    assert.deepEqual(request.options.dryRun, ['All']);
  });

  test('rules match operations, groups, versions, resources, subresources and scope', async () => {
    const path = '/rules';
    const callsFor = async (rule: Record<string, unknown>, attrs: AdmissionAttributes): Promise<number> => {
      const before = hooks.calls(path).length;
      await admit(
        attrs,
        {
          mutating: [],
          validating: [validating('v', webhook('rules.example.com', path, { rules: [rule] }))],
        },
        NO_LOOKUPS,
      );
      return hooks.calls(path).length - before;
    };
    const base = { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] };
    const create = createAttrs(service('ruled'));
    assert.equal(await callsFor(base, create), 1, 'exact match');
    assert.equal(await callsFor({ ...base, operations: ['UPDATE'] }, create), 0, 'other operation');
    assert.equal(await callsFor({ ...base, operations: ['*'] }, create), 1, 'any operation');
    assert.equal(await callsFor({ ...base, apiGroups: ['apps'] }, create), 0, 'other group');
    assert.equal(await callsFor({ ...base, apiVersions: ['v2'] }, create), 0, 'other version');
    assert.equal(await callsFor({ ...base, resources: ['pods'] }, create), 0, 'other resource');
    assert.equal(await callsFor({ ...base, resources: ['*'] }, create), 1, 'any resource');
    const status = createAttrs(service('ruled'), {
      operation: 'UPDATE',
      subResource: 'status',
      oldObject: service('ruled'),
    });
    const update = { ...base, operations: ['UPDATE'] };
    assert.equal(await callsFor(update, status), 0, 'a plain resource does not match its subresource');
    assert.equal(await callsFor({ ...update, resources: ['*'] }, status), 0, '* does not match subresources');
    assert.equal(
      await callsFor({ ...update, resources: ['services/status'] }, status),
      1,
      'resource/subresource',
    );
    assert.equal(await callsFor({ ...update, resources: ['*/status'] }, status), 1, '*/subresource');
    assert.equal(await callsFor({ ...update, resources: ['*/*'] }, status), 1, '*/*');
    assert.equal(
      await callsFor({ ...base, scope: 'Cluster' }, create),
      0,
      'Cluster scope skips namespaced objects',
    );
    assert.equal(await callsFor({ ...base, scope: 'Namespaced' }, create), 1, 'Namespaced scope');
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } };
    const nsCreate = createAttrs(namespace, { resource: NAMESPACES, namespace: undefined, name: 'team' });
    assert.equal(
      await callsFor({ ...base, resources: ['namespaces'], scope: 'Cluster' }, nsCreate),
      1,
      'Cluster scope',
    );
  });

  test('namespaceSelector uses the namespace labels; objectSelector matches the object or the old object', async () => {
    const path = '/selectors';
    const lookups: AdmissionLookups = {
      namespaceLabels: (ns): Record<string, string> | undefined => {
        if (ns === 'watched') return { 'portico.dev/admission': 'on' };
        return ns === 'default' ? {} : undefined;
      },
    };
    const callsFor = async (extra: Record<string, unknown>, attrs: AdmissionAttributes): Promise<number> => {
      const before = hooks.calls(path).length;
      const hook = webhook('selectors.example.com', path, {
        ...extra,
        rules: [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'] }],
      });
      await admit(attrs, { mutating: [mutating('m', hook)], validating: [] }, lookups);
      return hooks.calls(path).length - before;
    };
    const nsSelector = { namespaceSelector: { matchLabels: { 'portico.dev/admission': 'on' } } };
    const watched = { ...service('s'), metadata: { name: 's', namespace: 'watched' } };
    assert.equal(await callsFor(nsSelector, createAttrs(watched)), 1);
    assert.equal(await callsFor(nsSelector, createAttrs(service('s'))), 0);
    const notIn = {
      namespaceSelector: {
        matchExpressions: [{ key: 'portico.dev/admission', operator: 'NotIn', values: ['on'] }],
      },
    };
    assert.equal(
      await callsFor(notIn, createAttrs(service('s'))),
      1,
      'NotIn matches a namespace without the label',
    );
    const objSelector = {
      objectSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] },
    };
    assert.equal(await callsFor(objSelector, createAttrs(service('s', { tier: 'web' }))), 1);
    assert.equal(await callsFor(objSelector, createAttrs(service('s', { tier: 'db' }))), 0);
    const deletion = createAttrs(service('s'), {
      operation: 'DELETE',
      object: undefined,
      oldObject: service('s', { tier: 'web' }),
    });
    assert.equal(await callsFor(objSelector, deletion), 1, 'the old object matches on delete');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default', labels: { tier: 'web' } },
    };
    assert.equal(await callsFor(objSelector, createAttrs(pod, { resource: PODS })), 1);
  });

  test('a service reference is called through lookups.resolveService and verified for its DNS name', async () => {
    const path = '/via-service';
    const viaService = { service: { namespace: 'hooks', name: 'webhook', port: 8443, path }, caBundle };
    const resolved: string[] = [];
    const lookups: AdmissionLookups = {
      namespaceLabels: () => ({}),
      resolveService: (ns, name, port) => {
        resolved.push(`${ns}/${name}:${port}`);
        return `https://127.0.0.1:${hooks.port}`;
      },
    };
    const before = hooks.calls(path).length;
    const outcome = await admit(
      createAttrs(service('svc')),
      {
        mutating: [],
        validating: [validating('v', webhook('svc.example.com', path, { clientConfig: viaService }))],
      },
      lookups,
    );
    assert.equal(outcome.allowed, true);
    assert.deepEqual(resolved, ['hooks/webhook:8443']);
    assert.equal(hooks.calls(path).length, before + 1);
    const unresolvable = await admit(
      createAttrs(service('svc')),
      {
        mutating: [],
        validating: [validating('v', webhook('svc.example.com', path, { clientConfig: viaService }))],
      },
      NO_LOOKUPS,
    );
    assert.equal(unresolvable.allowed, false);
    assert.match(
      (unresolvable as { message: string }).message,
      /Post "https:\/\/webhook\.hooks\.svc:8443\/via-service\?timeout=10s"/,
    );
    const wrongName = { service: { namespace: 'other', name: 'elsewhere', port: 8443, path }, caBundle };
    const mismatch = await admit(
      createAttrs(service('svc')),
      {
        mutating: [],
        validating: [validating('v', webhook('svc.example.com', path, { clientConfig: wrongName }))],
      },
      lookups,
    );
    assert.equal(mismatch.allowed, false, 'a certificate without the service DNS name is refused');
  });

  test('a response with the wrong uid or a non-JSONPatch patch is a failed call', async () => {
    hooks.replies.set('/wrong-uid', () => ({ uid: 'not-the-request', allowed: true }));
    hooks.replies.set('/merge-patch', () => ({
      allowed: true,
      patchType: 'MergePatch',
      patch: Buffer.from('{}').toString('base64'),
    }));
    const wrongUid = await admit(
      createAttrs(service('bad')),
      { mutating: [], validating: [validating('v', webhook('uid.example.com', '/wrong-uid'))] },
      NO_LOOKUPS,
    );
    assert.equal(wrongUid.allowed, false);
    assert.match((wrongUid as { message: string }).message, /expected response\.uid=/);
    const badPatch = await admit(
      createAttrs(service('bad')),
      { mutating: [mutating('m', webhook('patch.example.com', '/merge-patch'))], validating: [] },
      NO_LOOKUPS,
    );
    assert.equal(badPatch.allowed, false);
    assert.match((badPatch as { message: string }).message, /unsupported patch type "MergePatch"/);
  });
});

describe('labelSelectorMatches', () => {
  test('follows metav1.LabelSelector semantics', () => {
    assert.equal(labelSelectorMatches(undefined, {}), true);
    assert.equal(labelSelectorMatches({}, { a: '1' }), true);
    assert.equal(labelSelectorMatches({ matchLabels: { a: '1' } }, { a: '1', b: '2' }), true);
    assert.equal(labelSelectorMatches({ matchLabels: { a: '1' } }, { a: '2' }), false);
    const exists = { matchExpressions: [{ key: 'a', operator: 'Exists' }] };
    assert.equal(labelSelectorMatches(exists, { a: '' }), true);
    assert.equal(labelSelectorMatches(exists, {}), false);
    const absent = { matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] };
    assert.equal(labelSelectorMatches(absent, {}), true);
    assert.equal(labelSelectorMatches(absent, { a: 'x' }), false);
    const notIn = { matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] };
    assert.equal(labelSelectorMatches(notIn, {}), true);
    assert.equal(labelSelectorMatches(notIn, { a: 'x' }), false);
  });
});
