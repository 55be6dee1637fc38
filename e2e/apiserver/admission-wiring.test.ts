import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ApiServer, startApiServer } from './index.ts';
import type { AdmissionAttributes } from './registry.ts';
import { call } from './test-helpers.ts';

let server: ApiServer;
const seen: AdmissionAttributes[] = [];

before(async () => {
  server = await startApiServer();
  const res = await call(
    server,
    'POST',
    '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
    {
      body: { metadata: { name: 'any' }, webhooks: [] },
    },
  );
  assert.equal(res.status, 201, res.text);
  server.registry.admit = async (attrs) => {
    seen.push(attrs);
    const object = attrs.object as { metadata?: { labels?: Record<string, string> } } | undefined;
    if (object?.metadata?.labels?.deny === 'yes') {
      return {
        allowed: false,
        code: 403,
        reason: 'Forbidden',
        message: 'admission webhook "deny.portico.dev" denied the request: no',
      };
    }
    if (object?.metadata?.labels?.deny === 'invalid') {
      return {
        allowed: false,
        code: 422,
        reason: 'Invalid',
        message: 'admission webhook "validate.portico.dev" denied the request: data.a: Invalid value: "b"',
        details: {
          causes: [{ reason: 'FieldValueInvalid', field: 'data.a', message: 'Invalid value: "b"' }],
        },
      };
    }
    if (attrs.operation === 'CREATE' && attrs.resource.plural === 'services') {
      const mutated = structuredClone(attrs.object) as { spec: { clusterIP?: string } };
      mutated.spec.clusterIP = '198.18.0.50';
      return { allowed: true, object: mutated, warnings: ['allocated 198.18.0.50'] };
    }
    return { allowed: true };
  };
});
after(() => server.close());

describe('admission wiring (the registry side of the admission.ts contract)', () => {
  test('a mutation from admission is stored and its warnings reach the client', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/services', {
      body: { metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal((res.body.spec as { clusterIP: string }).clusterIP, '198.18.0.50');
    assert.equal(res.headers.warning, '299 - "allocated 198.18.0.50"');
    const attrs = seen.at(-1)!;
    assert.equal(attrs.operation, 'CREATE');
    assert.equal(attrs.namespace, 'default');
    assert.equal(attrs.name, 'web');
    assert.equal(
      (attrs.object as { spec: { ports: { protocol: string }[] } }).spec.ports[0]!.protocol,
      'TCP',
      'defaults come first',
    );
  });

  test('a denial returns the code and message admission gave', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: { metadata: { name: 'no', labels: { deny: 'yes' } } },
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.message, 'admission webhook "deny.portico.dev" denied the request: no');
  });

  test('a denial keeps the webhook’s status details (field causes) for the client', async () => {
    const res = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: { metadata: { name: 'invalid', labels: { deny: 'invalid' } }, data: { a: 'b' } },
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.reason, 'Invalid');
    assert.deepEqual(res.body.details, {
      causes: [{ reason: 'FieldValueInvalid', field: 'data.a', message: 'Invalid value: "b"' }],
    });
  });

  test('updates pass the old object, deletes pass only the old object, dry run says so', async () => {
    await call(server, 'PATCH', '/api/v1/namespaces/default/services/web?dryRun=All', {
      body: { metadata: { labels: { a: 'b' } } },
      contentType: 'application/merge-patch+json',
    });
    const update = seen.at(-1)!;
    assert.equal(update.operation, 'UPDATE');
    assert.equal(update.dryRun, true);
    assert.equal((update.oldObject as { metadata: { labels?: unknown } }).metadata.labels, undefined);
    await call(server, 'DELETE', '/api/v1/namespaces/default/services/web');
    const del = seen.at(-1)!;
    assert.equal(del.operation, 'DELETE');
    assert.equal(del.object, undefined);
    assert.equal((del.oldObject as { metadata: { name: string } }).metadata.name, 'web');
  });

  test('concurrent patches that wait on admission are retried, so both land', async () => {
    await call(server, 'POST', '/api/v1/namespaces/default/configmaps', {
      body: { metadata: { name: 'race' } },
    });
    const slow = server.registry.admit;
    server.registry.admit = async (attrs, configs, lookups) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return slow!(attrs, configs, lookups);
    };
    try {
      const label = (key: string) =>
        call(server, 'PATCH', '/api/v1/namespaces/default/configmaps/race', {
          body: { metadata: { labels: { [key]: 'yes' } } },
          contentType: 'application/merge-patch+json',
        });
      const results = await Promise.all([label('a'), label('b'), label('c')]);
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 200, 200],
      );
      const final = await call(server, 'GET', '/api/v1/namespaces/default/configmaps/race');
      assert.deepEqual((final.body.metadata as { labels: unknown }).labels, { a: 'yes', b: 'yes', c: 'yes' });
    } finally {
      server.registry.admit = slow;
    }
  });

  test('status writes say which subresource', async () => {
    await call(server, 'POST', '/api/v1/namespaces/default/services', {
      body: { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
    });
    await call(server, 'PATCH', '/api/v1/namespaces/default/services/lb/status', {
      body: { status: { loadBalancer: { ingress: [{ ip: '198.18.1.1' }] } } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(seen.at(-1)!.subResource, 'status');
  });
});
