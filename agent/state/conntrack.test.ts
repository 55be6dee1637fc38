import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { staleUdpConntrackEntries } from './conntrack.ts';
import { makeService, makeSlice, TEST_NODE } from './test-fixtures.ts';
import { ChangeTracker } from './tracker.ts';
import type { DesiredState } from './types.ts';

const dns = makeService('dns', {
  type: 'NodePort',
  externalIPs: ['198.18.5.5'],
  ports: [
    { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
    { name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30054 },
  ],
});
const ports = [
  { name: 'dns', port: 5353, protocol: 'UDP' },
  { name: 'dns-tcp', port: 5353 },
];

function states(...sliceSets: (V1EndpointSlice | null)[]): DesiredState[] {
  const tracker = new ChangeTracker({ node: TEST_NODE });
  tracker.updateService(dns);
  return sliceSets.map((slice) => {
    if (slice === null) tracker.deleteEndpointSlice(makeSlice('dns', [], { ports }));
    else tracker.updateEndpointSlice(slice);
    return tracker.snapshot().desired.IPv4;
  });
}

describe('stale UDP conntrack entries', () => {
  test('0 → N: entries to every address of the UDP port are deleted, TCP is left alone', () => {
    const [before, after] = states(
      makeSlice('dns', [{ ip: '10.244.1.5', ready: false, serving: false }], { ports }),
      makeSlice('dns', [{ ip: '10.244.1.5' }], { ports }),
    );
    assert.deepEqual(staleUdpConntrackEntries(before!, after!), [
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53'],
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '198.18.5.5', '--orig-port-dst', '53'],
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', '30053'],
    ]);
  });

  test('an endpoint going away: only entries it answered are deleted', () => {
    const [before, after] = states(
      makeSlice('dns', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }], { ports }),
      makeSlice('dns', [{ ip: '10.244.1.6' }], { ports }),
    );
    const reply = ['--reply-src', '10.244.1.5', '--reply-port-src', '5353'];
    assert.deepEqual(staleUdpConntrackEntries(before!, after!), [
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', ...reply],
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '198.18.5.5', '--orig-port-dst', '53', ...reply],
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', '30053', ...reply],
    ]);
  });

  test('N → 0 deletes the last endpoint’s entries; no change deletes nothing', () => {
    const [first, same, gone] = states(
      makeSlice('dns', [{ ip: '10.244.1.5' }], { ports }),
      makeSlice('dns', [{ ip: '10.244.1.5' }], { ports }),
      null,
    );
    assert.deepEqual(staleUdpConntrackEntries(first!, same!), []);
    const deletions = staleUdpConntrackEntries(same!, gone!);
    assert.equal(deletions.length, 3);
    assert.ok(deletions.every((args) => args.includes('10.244.1.5')));
  });

  test('a deleted Service’s UDP endpoints are cleaned up too', () => {
    const [before] = states(makeSlice('dns', [{ ip: '10.244.1.5' }], { ports }));
    const empty: DesiredState = { family: 'IPv4', servicePorts: [] };
    assert.equal(staleUdpConntrackEntries(before!, empty).length, 3);
  });
});
