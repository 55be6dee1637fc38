import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { runConntrackDeletions } from './conntrack-runner.ts';
import { commandRunner } from './iptables/proxier.ts';
import { staleUdpConntrackEntries } from './state/conntrack.ts';
import { makeService, makeSlice } from './state/test-fixtures.ts';
import { ChangeTracker } from './state/tracker.ts';
import type { NodeInfo } from './state/types.ts';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const NODE: NodeInfo = { name: 'node-a', zone: '', addresses: ['198.18.255.1'] };

/** A UDP flow from a client to the Service's cluster IP, answered by `backend`. */
function insertFlow(namespace: string, sport: number, backend: string): void {
  execFileSync(
    'ip',
    [
      'netns',
      'exec',
      namespace,
      'conntrack',
      '-I',
      '-p',
      'udp',
      '-s',
      '198.18.255.9',
      '-d',
      '198.19.0.53',
      '--sport',
      String(sport),
      '--dport',
      '53',
      '--reply-src',
      backend,
      '--reply-dst',
      '198.18.255.9',
      '--reply-port-src',
      '5353',
      '--reply-port-dst',
      String(sport),
      '-t',
      '120',
    ],
    { stdio: 'ignore' },
  );
}

function flows(namespace: string): string {
  return execFileSync('ip', ['netns', 'exec', namespace, 'conntrack', '-L', '-p', 'udp'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

describe('conntrack runner', { skip: isRoot ? false : 'needs root for a network namespace' }, () => {
  test('deletes exactly the flows of a removed UDP endpoint; "0 flow entries" is not an error', async () => {
    const namespace = `portico-ct-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', namespace]);
    try {
      const dns = makeService('dns', {
        clusterIP: '198.19.0.53',
        ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }],
      });
      const ports = [{ name: 'dns', port: 5353, protocol: 'UDP' }];
      const tracker = new ChangeTracker({ node: NODE });
      tracker.updateService(dns);
      tracker.updateEndpointSlice(makeSlice('dns', [{ ip: '198.18.0.5' }, { ip: '198.18.0.6' }], { ports }));
      const before = tracker.snapshot().desired.IPv4;
      tracker.updateEndpointSlice(makeSlice('dns', [{ ip: '198.18.0.6' }], { ports }));
      const after = tracker.snapshot().desired.IPv4;

      insertFlow(namespace, 1000, '198.18.0.5');
      insertFlow(namespace, 1001, '198.18.0.6');
      const run = commandRunner(namespace);
      const result = await runConntrackDeletions(run, staleUdpConntrackEntries(before, after));
      assert.deepEqual(result, { deleted: 1, errors: [] });
      const left = flows(namespace);
      assert.doesNotMatch(left, /src=198\.18\.0\.5 /);
      assert.match(left, /src=198\.18\.0\.6 /);

      const again = await runConntrackDeletions(run, staleUdpConntrackEntries(before, after));
      assert.deepEqual(again, { deleted: 0, errors: [] });
      const bad = await runConntrackDeletions(run, [['-D', '-p', 'udp', '--orig-dst', 'not-an-ip']]);
      assert.equal(bad.errors.length, 1);
    } finally {
      execFileSync('ip', ['netns', 'del', namespace]);
    }
  });
});
