import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kubeNow, localNodeIdentity, localNodeObject, toWire, zoneLabel } from './node-object.ts';

describe('local node objects', () => {
  test('node i gets its pod CIDR, LAN InternalIP and a round-robin zone', () => {
    assert.deepEqual(localNodeIdentity(3), {
      name: 'node-3',
      index: 3,
      podCidr: '198.18.3.0/24',
      internalIp: '198.18.255.4',
      zone: 'zone-b',
    });
  });

  test('a node of a cluster with its own pod range carries the pod CIDR it was given', () => {
    const node = localNodeIdentity(2, ['zone-a', 'zone-b', 'zone-c'], '10.0.32.0/20');
    assert.deepEqual([node.podCidr, node.internalIp, node.zone], ['10.0.32.0/20', '198.18.255.3', 'zone-c']);
    assert.deepEqual(localNodeObject(node, kubeNow()).spec, {
      podCIDR: '10.0.32.0/20',
      podCIDRs: ['10.0.32.0/20'],
    });
  });

  test('the Node carries labels, podCIDRs, addresses and a Ready condition', () => {
    const now = kubeNow(Date.UTC(2026, 0, 1, 0, 0, 0, 750));
    const object = localNodeObject(localNodeIdentity(0), now);
    assert.equal(object.metadata?.labels?.[zoneLabel], 'zone-a');
    assert.deepEqual(object.spec?.podCIDRs, ['198.18.0.0/24']);
    assert.deepEqual(object.status?.addresses?.[0], { type: 'InternalIP', address: '198.18.255.1' });
    const ready = object.status?.conditions?.[0];
    assert.deepEqual([ready?.type, ready?.status, ready?.reason], ['Ready', 'True', 'KubeletReady']);
    assert.match(
      JSON.stringify(toWire(object)),
      /"lastHeartbeatTime":"2026-01-01T00:00:00Z"/,
      'second precision on the wire',
    );
  });

  test('the Node reports CPU for topology-mode Auto and as many pods as its pod CIDR holds', () => {
    const small = localNodeObject(localNodeIdentity(0), kubeNow());
    assert.deepEqual(small.status?.allocatable, { cpu: '2', pods: '253' });
    assert.deepEqual(small.status?.capacity, small.status?.allocatable);
    const wide = localNodeObject(localNodeIdentity(1, ['zone-a'], '10.0.16.0/20'), kubeNow());
    assert.equal(wide.status?.allocatable?.['pods'], '4093');
  });
});
