import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import { validateServices } from './validate.ts';

const validate = validateServices({
  nodePortRange: { base: 30000, size: 2768 },
  serviceCIDRs: ['198.19.0.0/16'],
});

function service(spec: V1Service['spec']): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec };
}

const stored = service({
  type: 'ClusterIP',
  clusterIP: '198.19.0.20',
  clusterIPs: ['198.19.0.20'],
  ipFamilies: ['IPv4'],
  ipFamilyPolicy: 'SingleStack',
  sessionAffinity: 'None',
  internalTrafficPolicy: 'Cluster',
  selector: { app: 'web' },
  ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }],
});

describe('validating Service webhook', () => {
  test('admits a valid Service', async () => {
    const response = await validate({ uid: 'a', operation: 'CREATE', object: stored });
    assert.deepEqual(response, { uid: 'a', allowed: true });
  });

  test('denies duplicate ports with a 422 naming the field', async () => {
    const bad = structuredClone(stored);
    bad.spec!.ports = [
      { name: 'a', port: 80, protocol: 'TCP', targetPort: 80 },
      { name: 'b', port: 80, protocol: 'TCP', targetPort: 81 },
    ];
    const response = await validate({ uid: 'b', operation: 'CREATE', object: bad });
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
    assert.match(response.status!.message, /^Service "web" is invalid: spec\.ports\[1\]: Duplicate value/);
  });

  test('denies a changed clusterIP on UPDATE as immutable', async () => {
    const changed = structuredClone(stored);
    changed.spec!.clusterIP = '198.19.0.21';
    changed.spec!.clusterIPs = ['198.19.0.21'];
    const response = await validate({ uid: 'c', operation: 'UPDATE', object: changed, oldObject: stored });
    assert.match(response.status!.message, /spec\.clusterIPs\[0\]: Invalid value: .*may not change once set/);
  });

  test('leaves status updates and deletes alone', async () => {
    const bad = service({});
    assert.equal(
      (
        await validate({
          uid: 'd',
          operation: 'UPDATE',
          subResource: 'status',
          object: bad,
          oldObject: stored,
        })
      ).allowed,
      true,
    );
    assert.equal((await validate({ uid: 'e', operation: 'DELETE', oldObject: stored })).allowed, true);
  });
});
