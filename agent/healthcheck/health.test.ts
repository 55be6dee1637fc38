import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeService, makeSlice } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import type { NodeInfo } from '../state/types.ts';
import { ProxyHealth, parseBindAddress, startProxyHealthServer } from './proxy-health.ts';
import { ServiceHealthServers, serviceHealthChecks } from './service-health.ts';

const NODE: NodeInfo = { name: 'node-a', zone: 'zone-a', addresses: ['198.18.255.1'] };

async function get(port: number, path = '/'): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

describe('proxy health', () => {
  test('healthy until a queued change waits longer than the timeout; a sync clears it', () => {
    let now = 1_000_000;
    const health = new ProxyHealth(60_000, () => now);
    assert.equal(health.healthy, true);
    health.queued();
    now += 59_999;
    assert.equal(health.healthy, true);
    now += 1;
    assert.equal(health.healthy, false);
    health.updated(now);
    assert.equal(health.healthy, true);
    assert.equal(health.report(true).status, 200);
  });

  test('a sync that started before a change does not clear that change', () => {
    let now = 0;
    const health = new ProxyHealth(10, () => now);
    const syncStarted = now;
    now = 5;
    health.queued();
    health.updated(syncStarted);
    now = 20;
    assert.equal(health.healthy, false);
  });

  test('/healthz fails for a node being removed, /livez does not; both are JSON with nosniff', async () => {
    const health = new ProxyHealth(60_000);
    health.setNodeEligible(false);
    const { server, port } = await startProxyHealthServer(health, { host: '127.0.0.1', port: 0 });
    try {
      const healthz = await get(port, '/healthz');
      assert.equal(healthz.status, 503);
      assert.equal((healthz.body as { nodeEligible: boolean }).nodeEligible, false);
      assert.equal(healthz.headers.get('content-type'), 'application/json');
      assert.equal(healthz.headers.get('x-content-type-options'), 'nosniff');
      const livez = await get(port, '/livez');
      assert.equal(livez.status, 200);
      assert.equal('nodeEligible' in (livez.body as object), false);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    } finally {
      server.close();
    }
  });

  test('bind addresses parse with bracketed IPv6', () => {
    assert.deepEqual(parseBindAddress('[::]:10256', '--f'), { host: '::', port: 10256 });
    assert.deepEqual(parseBindAddress('0.0.0.0:10249', '--f'), { host: '0.0.0.0', port: 10249 });
    assert.throws(() => parseBindAddress('0.0.0.0:70000', '--f'), /--f: Invalid value/);
  });
});

describe('service health check node ports', () => {
  const localService = makeService('lb', {
    type: 'LoadBalancer',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 0,
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  });

  function checksFor(endpoints: Parameters<typeof makeSlice>[1], healthCheckNodePort: number) {
    const tracker = new ChangeTracker({ node: NODE });
    tracker.updateService({ ...localService, spec: { ...localService.spec, healthCheckNodePort } });
    tracker.updateEndpointSlice(makeSlice('lb', endpoints));
    return serviceHealthChecks(tracker.snapshot().desired.IPv4.servicePorts);
  }

  test('counts ready local endpoints only: serving-terminating ones make the node fail so balancers drain it', () => {
    const ready = checksFor(
      [
        { ip: '10.244.0.5', node: 'node-a' },
        { ip: '10.244.1.5', node: 'node-b' },
      ],
      0,
    );
    assert.equal(ready.size, 0, 'no health check without a healthCheckNodePort');
    const counted = checksFor(
      [
        { ip: '10.244.0.5', node: 'node-a' },
        { ip: '10.244.0.6', node: 'node-a' },
        { ip: '10.244.1.5', node: 'node-b' },
      ],
      32000,
    );
    assert.deepEqual(counted.get('default/lb'), {
      namespace: 'default',
      name: 'lb',
      port: 32000,
      localEndpoints: 2,
    });
    const draining = checksFor(
      [{ ip: '10.244.0.5', node: 'node-a', ready: false, serving: true, terminating: true }],
      32000,
    );
    assert.equal(draining.get('default/lb')?.localEndpoints, 0);
  });

  test('servers answer 200 with local endpoints and 503 without, follow updates and close', async () => {
    let proxyHealthy = true;
    const failures: string[] = [];
    const servers = new ServiceHealthServers(
      '127.0.0.1',
      () => proxyHealthy,
      (_health, error) => failures.push(error.message),
    );
    const probe = await startProxyHealthServer(new ProxyHealth(1), { host: '127.0.0.1', port: 0 });
    const port = probe.port;
    probe.server.close();
    await new Promise((resolve) => probe.server.once('close', resolve));
    try {
      await servers.sync(
        new Map([['default/lb', { namespace: 'default', name: 'lb', port, localEndpoints: 1 }]]),
      );
      const answer = await get(port, '/anything');
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, {
        service: { namespace: 'default', name: 'lb' },
        localEndpoints: 1,
        serviceProxyHealthy: true,
      });
      await servers.sync(
        new Map([['default/lb', { namespace: 'default', name: 'lb', port, localEndpoints: 0 }]]),
      );
      assert.equal((await get(port)).status, 503);
      await servers.sync(
        new Map([['default/lb', { namespace: 'default', name: 'lb', port, localEndpoints: 3 }]]),
      );
      proxyHealthy = false;
      assert.equal((await get(port)).status, 503, 'a stale agent fails every Service check');
      await servers.sync(new Map());
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
      assert.deepEqual(failures, []);
    } finally {
      await servers.close();
    }
  });
});
