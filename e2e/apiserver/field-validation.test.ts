import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { kindDefinition, pruneObject } from './builtin-schemas.ts';
import {
  BUILTIN_SCHEMAS_PATH,
  generateBuiltinSchemas,
  renderBuiltinSchemas,
} from './generate-builtin-schemas.ts';
import { type ApiServer, startApiServer } from './index.ts';
import { call, kubectlSession } from './test-helpers.ts';

const SERVICE_WITH_UNKNOWN_FIELDS = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web' },
  spec: { bogus: 1, ports: [{ port: 80, bogusPort: 2 }], selector: { app: 'web' } },
};

const SERVICE_STRICT_MESSAGE =
  'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.bogus", unknown field "spec.ports[0].bogusPort"';

describe('built-in schemas', () => {
  test('builtin-schemas.json is what the generator makes from kubernetes-models', () => {
    // Compared as data: the formatter may lay the file out differently from the generator.
    assert.deepEqual(
      JSON.parse(readFileSync(BUILTIN_SCHEMAS_PATH, 'utf8')),
      JSON.parse(renderBuiltinSchemas(generateBuiltinSchemas())),
      'stale: run node_modules/.bin/node e2e/apiserver/generate-builtin-schemas.ts',
    );
  });

  test('pruneObject drops unknown fields at any depth and keeps maps, int-or-string and free-form values', () => {
    const pod = {
      metadata: { name: 'p', labels: { 'any-key': 'v' }, surplus: true },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'i',
            ports: [{ containerPort: 80, extra: 1 }],
            resources: { limits: { cpu: '1', memory: 128 } },
            livenessProbe: { httpGet: { port: 'http', path: '/' } },
          },
        ],
        nodeSelectorx: {},
      },
    };
    const unknown: string[] = [];
    pruneObject(pod, kindDefinition('', 'v1', 'Pod')!, '', unknown);
    assert.deepEqual(unknown, [
      'metadata.surplus',
      'spec.containers[0].ports[0].extra',
      'spec.nodeSelectorx',
    ]);
    assert.deepEqual(pod, {
      metadata: { name: 'p', labels: { 'any-key': 'v' } },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'i',
            ports: [{ containerPort: 80 }],
            resources: { limits: { cpu: '1', memory: 128 } },
            livenessProbe: { httpGet: { port: 'http', path: '/' } },
          },
        ],
      },
    });
  });

  test('every served built-in kind has a definition', () => {
    for (const [group, kind] of [
      ['', 'Endpoints'],
      ['events.k8s.io', 'Event'],
      ['discovery.k8s.io', 'EndpointSlice'],
      ['coordination.k8s.io', 'Lease'],
      ['apps', 'ReplicaSet'],
      ['admissionregistration.k8s.io', 'ValidatingWebhookConfiguration'],
      ['apiextensions.k8s.io', 'CustomResourceDefinition'],
    ] as const) {
      assert.ok(kindDefinition(group, 'v1', kind)?.properties.metadata, `${group}/${kind}`);
    }
  });
});

describe('fieldValidation of built-in kinds in depth', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  test('Strict: 400 BadRequest with upstream message, nothing stored', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/services?fieldValidation=Strict', {
      body: SERVICE_WITH_UNKNOWN_FIELDS,
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.reason, 'BadRequest');
    assert.equal(res.body.message, SERVICE_STRICT_MESSAGE);
    assert.equal(server.store.get('/services', 'default', 'web'), undefined);
  });

  test('Warn (the default): stored without the unknown fields, one Warning each', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/services', {
      body: { ...SERVICE_WITH_UNKNOWN_FIELDS, metadata: { name: 'warned' } },
    });
    assert.equal(res.status, 201);
    assert.equal(
      res.headers.warning,
      '299 - "unknown field \\"spec.bogus\\"", 299 - "unknown field \\"spec.ports[0].bogusPort\\""',
    );
    const stored = server.store.get('/services', 'default', 'warned')!;
    const spec = stored.spec as Record<string, unknown> & { ports: Record<string, unknown>[] };
    assert.equal(spec.bogus, undefined);
    assert.equal(spec.ports[0]!.bogusPort, undefined);
    assert.equal(spec.ports[0]!.port, 80);
    assert.deepEqual(spec.selector, { app: 'web' });
  });

  test('Ignore: stored without the unknown fields, no warnings', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/services?fieldValidation=Ignore', {
      body: { ...SERVICE_WITH_UNKNOWN_FIELDS, metadata: { name: 'ignored' } },
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.warning, undefined);
    const spec = server.store.get('/services', 'default', 'ignored')!.spec as Record<string, unknown>;
    assert.equal(spec.bogus, undefined);
  });

  test('update and patch are checked in depth too', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'd' } },
        template: {
          metadata: { labels: { app: 'd' } },
          spec: { containers: [{ name: 'c', image: 'nginx' }] },
        },
      },
    };
    const created = await call(server, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
      body: deployment,
    });
    assert.equal(created.status, 201);
    const withUnknown = structuredClone(deployment);
    (withUnknown.spec.template.spec.containers[0] as Record<string, unknown>).imagePullPolicyy = 'Always';
    const put = await call(
      server,
      'PUT',
      '/apis/apps/v1/namespaces/default/deployments/d?fieldValidation=Strict',
      {
        body: withUnknown,
      },
    );
    assert.equal(put.status, 400);
    assert.equal(
      put.body.message,
      'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolicyy"',
    );
    const patch = await call(
      server,
      'PATCH',
      '/apis/apps/v1/namespaces/default/deployments/d?fieldValidation=Strict',
      { body: { spec: { strategy: { bogusStrategy: 1 } } }, contentType: 'application/merge-patch+json' },
    );
    assert.equal(patch.status, 400);
    assert.match(String(patch.body.message), /unknown field "spec\.strategy\.bogusStrategy"$/);
    const stored = server.store.get('apps/deployments', 'default', 'd')!;
    assert.equal((stored.spec as { strategy?: Record<string, unknown> }).strategy?.bogusStrategy, undefined);
  });
});

describe('fieldValidation through kubectl', () => {
  const session = kubectlSession();
  const { kubectl } = session;

  test('kubectl apply (default --validate=strict) prints the strict decoding error', async () => {
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(SERVICE_WITH_UNKNOWN_FIELDS));
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `Error from server (BadRequest): error when creating "STDIN": ${SERVICE_STRICT_MESSAGE}`,
    );
    assert.equal(session.server.store.get('/services', 'default', 'web'), undefined);
  });

  test('kubectl apply --validate=warn creates the Service and prints the warnings', async () => {
    const result = await kubectl(
      ['apply', '--validate=warn', '-f', '-'],
      JSON.stringify(SERVICE_WITH_UNKNOWN_FIELDS),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^Warning: unknown field "spec\.bogus"$/m);
    assert.match(result.stderr, /^Warning: unknown field "spec\.ports\[0\]\.bogusPort"$/m);
    assert.equal(result.stdout.trim(), 'service/web created');
    const spec = session.server.store.get('/services', 'default', 'web')!.spec as Record<string, unknown>;
    assert.equal(spec.bogus, undefined);
  });

  test('kubectl explain describes every built-in kind from upstream’s types', async () => {
    for (const [path, field] of [
      ['pod.spec.containers.ports', 'ports <[]ContainerPort>'],
      ['endpointslice.endpoints.conditions', 'conditions <EndpointConditions>'],
      ['deployment.spec.strategy', 'strategy <DeploymentStrategy>'],
      ['lease.spec', 'spec <LeaseSpec>'],
    ]) {
      const result = await kubectl(['explain', path!], '');
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^FIELD: ${field!.replace(/[[\]]/g, '\\$&')}$`, 'm'), path);
    }
  });

  test('kubectl apply --validate=false (Ignore) drops the fields silently', async () => {
    const service = { ...SERVICE_WITH_UNKNOWN_FIELDS, metadata: { name: 'quiet' } };
    const result = await kubectl(['apply', '--validate=false', '-f', '-'], JSON.stringify(service));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const spec = session.server.store.get('/services', 'default', 'quiet')!.spec as Record<string, unknown>;
    assert.equal(spec.bogus, undefined);
  });
});
