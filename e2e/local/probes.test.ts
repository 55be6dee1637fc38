import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { V1Container } from '@kubernetes/client-node';
import { servePod } from './pod-server.ts';
import {
  directProbeTransport,
  initialReadinessState,
  nextProbeDueMs,
  PodReadinessProber,
  probeTiming,
  type ReadinessState,
  recordProbeResult,
  resolveProbeAction,
  runProbe,
} from './probes.ts';

describe('probeTiming', () => {
  test('fills in upstream defaults', () => {
    assert.deepEqual(probeTiming({}), {
      initialDelaySeconds: 0,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });
  test('rejects a zero period with the field path', () => {
    assert.throws(
      () => probeTiming({ periodSeconds: 0 }, 'spec.containers[0].readinessProbe'),
      /spec.containers\[0\].readinessProbe.periodSeconds: Invalid value: 0: must be greater than or equal to 1/,
    );
  });
});

describe('recordProbeResult', () => {
  const timing = probeTiming({ successThreshold: 2, failureThreshold: 3 });
  const cases: { name: string; results: boolean[]; readyAfterEach: boolean[] }[] = [
    {
      name: 'needs successThreshold consecutive successes to become ready',
      results: [true, true],
      readyAfterEach: [false, true],
    },
    {
      name: 'a failure resets the success count',
      results: [true, false, true, true],
      readyAfterEach: [false, false, false, true],
    },
    {
      name: 'stays ready until failureThreshold consecutive failures',
      results: [true, true, false, false, false],
      readyAfterEach: [false, true, true, true, false],
    },
    {
      name: 'a success in between resets the failure count',
      results: [true, true, false, false, true, false, false],
      readyAfterEach: [false, true, true, true, true, true, true],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      let state: ReadinessState = initialReadinessState;
      const observed = c.results.map((result) => {
        state = recordProbeResult(state, result, timing);
        return state.ready;
      });
      assert.deepEqual(observed, c.readyAfterEach);
    });
  }
});

describe('nextProbeDueMs', () => {
  const timing = probeTiming({ initialDelaySeconds: 5, periodSeconds: 10 });
  test('first probe after initialDelaySeconds, then every periodSeconds', () => {
    assert.equal(nextProbeDueMs(1_000, undefined, timing), 6_000);
    assert.equal(nextProbeDueMs(1_000, 6_000, timing), 16_000);
    assert.equal(nextProbeDueMs(1_000, 6_000, timing, 10), 6_100);
  });
});

describe('resolveProbeAction', () => {
  const container: V1Container = { name: 'web', ports: [{ name: 'http', containerPort: 8080 }] };
  test('httpGet with a named port and defaults', () => {
    assert.deepEqual(resolveProbeAction({ httpGet: { port: 'http' } }, container), {
      kind: 'http',
      port: 8080,
      path: '/',
      scheme: 'http',
    });
  });
  test('httpGet HTTPS with a numeric port and path', () => {
    assert.deepEqual(
      resolveProbeAction({ httpGet: { port: 8443, path: '/healthz', scheme: 'HTTPS' } }, container),
      {
        kind: 'http',
        port: 8443,
        path: '/healthz',
        scheme: 'https',
      },
    );
  });
  test('tcpSocket and exec', () => {
    assert.deepEqual(resolveProbeAction({ tcpSocket: { port: '8080' } }, container), {
      kind: 'tcp',
      port: 8080,
    });
    assert.deepEqual(resolveProbeAction({ exec: { command: ['true'] } }, container), { kind: 'exec' });
  });
  test('unknown port names and missing handlers are rejected', () => {
    assert.throws(
      () => resolveProbeAction({ tcpSocket: { port: 'metrics' } }, container),
      /readinessProbe.tcpSocket.port: Invalid value: "metrics": must be a port number or the name of a container port/,
    );
    assert.throws(
      () => resolveProbeAction({}, container),
      /readinessProbe: Required value: must specify a handler type/,
    );
  });
});

describe('runProbe against a real pod server on 127.0.0.1', () => {
  test('httpGet passes on 2xx, fails on 5xx and on refused connections; tcpSocket connects', async () => {
    const workload = await servePod('probe-target', [{ port: 0, protocol: 'TCP' }], '127.0.0.1');
    const failing = createServer((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    try {
      const port = workload.boundPorts[0]?.port ?? 0;
      const failingPort = (failing.address() as AddressInfo).port;
      assert.equal(
        (await runProbe({ kind: 'http', port, path: '/healthz', scheme: 'http' }, '127.0.0.1', 1000)).success,
        true,
      );
      const unavailable = await runProbe(
        { kind: 'http', port: failingPort, path: '/', scheme: 'http' },
        '127.0.0.1',
        1000,
      );
      assert.deepEqual(unavailable, { success: false, message: 'HTTP probe returned 503' });
      assert.equal((await runProbe({ kind: 'tcp', port }, '127.0.0.1', 1000)).success, true);
      await workload.close();
      const refused = await runProbe({ kind: 'tcp', port }, '127.0.0.1', 1000);
      assert.equal(refused.success, false);
      assert.match(refused.message, /ECONNREFUSED/);
    } finally {
      await workload.close();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });
});

describe('PodReadinessProber', () => {
  test('turns ready when the probe passes and unready after failureThreshold failures', async () => {
    const workload = await servePod('prober-target', [{ port: 0, protocol: 'TCP' }], '127.0.0.1');
    const port = workload.boundPorts[0]?.port ?? 0;
    const changes: boolean[] = [];
    let notify: () => void = () => undefined;
    const prober = new PodReadinessProber({
      podIp: '127.0.0.1',
      containers: [
        {
          name: 'web',
          readinessProbe: { httpGet: { port, path: '/healthz' }, periodSeconds: 1, failureThreshold: 2 },
        },
        { name: 'sidecar' },
      ],
      transport: directProbeTransport,
      msPerSecond: 20,
      onReadinessChange: (ready) => {
        changes.push(ready);
        notify();
      },
    });
    const waitFor = (count: number) =>
      new Promise<void>((resolve, reject) => {
        const timeout = setTimeout(() => reject(new Error(`saw only ${JSON.stringify(changes)}`)), 5_000);
        notify = () => {
          if (changes.length >= count) {
            clearTimeout(timeout);
            resolve();
          }
        };
        notify();
      });
    try {
      await waitFor(2);
      assert.deepEqual(changes, [false, true]);
      await workload.close();
      await waitFor(3);
      assert.deepEqual(changes, [false, true, false]);
      assert.equal(prober.ready, false);
    } finally {
      prober.stop();
      await workload.close();
    }
  });

  test('a pod whose containers have no readiness probe is ready at once', async () => {
    const seen: boolean[] = [];
    const prober = new PodReadinessProber({
      podIp: '127.0.0.1',
      containers: [{ name: 'web' }],
      transport: directProbeTransport,
      onReadinessChange: (ready) => seen.push(ready),
    });
    await new Promise((resolve) => setImmediate(resolve));
    prober.stop();
    assert.deepEqual(seen, [true]);
  });
});
