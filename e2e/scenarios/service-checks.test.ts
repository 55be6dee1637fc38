import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  eventually,
  hostInBody,
  ipv4InRange,
  manifestList,
  mentionsAddress,
  nslookupAddresses,
  serviceManifest,
  webDeployment,
  webPod,
} from './service-checks.ts';

describe('eventually', () => {
  test('returns the first value the probe gives, retrying through undefined and errors', async () => {
    let calls = 0;
    const value = await eventually(
      'the third call',
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('not created yet');
        return calls === 3 ? 'ready' : undefined;
      },
      5_000,
      1,
    );
    assert.equal(value, 'ready');
    assert.equal(calls, 3);
  });

  test('fails naming what it waited for and the last error', async () => {
    await assert.rejects(
      eventually(
        'service/web to answer',
        async () => {
          throw new Error('connection refused');
        },
        20,
        5,
      ),
      /timed out after 20 ms waiting for service\/web to answer: connection refused/,
    );
  });
});

describe('hostInBody', () => {
  test("reads the pod name from the seeds' demo body", () => {
    assert.equal(hostInBody('<p>The host is web-7d4b9-x2x9q</p>\n'), 'web-7d4b9-x2x9q');
    assert.equal(hostInBody('curl: (7) Failed to connect'), undefined);
  });
});

describe('mentionsAddress', () => {
  test('matches whole addresses only', () => {
    const rules = '-A KUBE-SEP-X -p tcp -j DNAT --to-destination 198.18.0.50:80';
    assert.equal(mentionsAddress(rules, '198.18.0.50'), true);
    assert.equal(mentionsAddress(rules, '198.18.0.5'), false);
    assert.equal(mentionsAddress(rules, '98.18.0.50'), false);
    assert.equal(mentionsAddress('-> 198.18.1.2:9376  Masq', '198.18.1.2'), true);
  });
});

describe('ipv4InRange', () => {
  test('CIDRs, including a base address that is not the network address', () => {
    assert.equal(ipv4InRange('198.18.200.255', '198.18.200.0/24'), true);
    assert.equal(ipv4InRange('198.18.201.0', '198.18.200.0/24'), false);
    assert.equal(ipv4InRange('172.18.255.7', '172.18.255.200/16'), true);
  });

  test('first-last ranges are inclusive', () => {
    assert.equal(ipv4InRange('198.18.200.10', '198.18.200.10-198.18.200.250'), true);
    assert.equal(ipv4InRange('198.18.200.250', '198.18.200.10-198.18.200.250'), true);
    assert.equal(ipv4InRange('198.18.200.9', '198.18.200.10-198.18.200.250'), false);
  });

  test('refuses what is not an IPv4 address', () => {
    assert.throws(() => ipv4InRange('fd00::1', '198.18.200.0/24'), /"fd00::1" is not an IPv4 address/);
  });
});

describe('nslookupAddresses', () => {
  test('busybox 1.36 output: the answers, not the server', () => {
    const output = [
      'Server:\t\t10.96.0.10',
      'Address:\t10.96.0.10:53',
      '',
      'Name:\theadless-web.portico-e2e.svc.cluster.local',
      'Address: 10.244.2.6',
      'Name:\theadless-web.portico-e2e.svc.cluster.local',
      'Address: 10.244.1.5',
      '',
    ].join('\n');
    assert.deepEqual(nslookupAddresses(output), ['10.244.1.5', '10.244.2.6']);
  });

  test('the older numbered format with a name after the address', () => {
    const output = [
      'Server:    10.96.0.10',
      'Address 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local',
      '',
      'Name:      headless-web.portico-e2e.svc.cluster.local',
      'Address 1: 10.244.1.5 headless-web-0.headless-web.portico-e2e.svc.cluster.local',
    ].join('\n');
    assert.deepEqual(nslookupAddresses(output), ['10.244.1.5']);
  });

  test('no answer gives no addresses', () => {
    assert.deepEqual(
      nslookupAddresses(
        "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n** server can't find x: NXDOMAIN\n",
      ),
      [],
    );
  });
});

describe('manifestList', () => {
  test('wraps objects in a v1 List that kubectl apply takes', () => {
    assert.deepEqual(JSON.parse(manifestList([{ kind: 'Service' }])), {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ kind: 'Service' }],
    });
  });
});

describe('manifest builders', () => {
  test('serviceManifest lists one v1 Service with the spec as given', () => {
    const spec = { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] };
    assert.deepEqual(JSON.parse(serviceManifest('web', spec)).items, [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec },
    ]);
  });

  test('webPod keeps the extra spec fields and carries the app label', () => {
    const pod = webPod('web-0', 'web', { nodeName: 'node-1' }) as {
      metadata: { labels: Record<string, string> };
      spec: { nodeName?: string; terminationGracePeriodSeconds: number; containers: { name: string }[] };
    };
    assert.deepEqual(pod.metadata.labels, { app: 'web' });
    assert.equal(pod.spec.nodeName, 'node-1');
    assert.equal(pod.spec.terminationGracePeriodSeconds, 0);
    assert.deepEqual(
      pod.spec.containers.map((container) => container.name),
      ['web'],
    );
  });

  test("webDeployment's selector matches its pods' labels", () => {
    const deployment = webDeployment('web', 3) as {
      metadata: { name: string };
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string> } };
      };
    };
    assert.equal(deployment.metadata.name, 'web');
    assert.equal(deployment.spec.replicas, 3);
    assert.deepEqual(deployment.spec.selector.matchLabels, { app: 'web' });
    assert.deepEqual(deployment.spec.template.metadata.labels, deployment.spec.selector.matchLabels);
  });
});
