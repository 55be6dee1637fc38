/**
 * The Services both kernel checks (iptables-restore and nft) load: dual-stack ClusterIP, a
 * LoadBalancer with every external feature, and UDP DNS, so one fixture exercises every chain kind.
 */
import { makeService, makeSlice } from '../state/test-fixtures.ts';
import type { ChangeTracker } from '../state/tracker.ts';

/** Feeds the kernel checks' Services and EndpointSlices into a tracker. */
export function addKernelCheckServices(tracker: ChangeTracker): void {
  tracker.updateService(
    makeService('clusteripservice', {
      clusterIP: '10.110.244.138',
      clusterIPs: ['10.110.244.138', 'fd00:10:96::138'],
      ipFamilies: ['IPv4', 'IPv6'],
      ports: [{ port: 8080, protocol: 'TCP', targetPort: 80 }],
    }),
  );
  tracker.updateEndpointSlice(
    makeSlice(
      'clusteripservice',
      ['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8'].map((ip) => ({ ip })),
      {
        name: 'seed-v4',
        ports: [{ name: '', port: 80 }],
      },
    ),
  );
  tracker.updateEndpointSlice(
    makeSlice('clusteripservice', [{ ip: 'fd00:10:244:1::5' }], {
      name: 'seed-v6',
      ports: [{ name: '', port: 80 }],
    }),
  );
  tracker.updateService(
    makeService(
      'lb',
      {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.20',
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
        loadBalancerSourceRanges: ['198.18.7.0/24'],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        sessionAffinity: 'ClientIP',
        externalIPs: ['198.18.5.5'],
      },
      { loadBalancerIPs: ['198.18.100.1'] },
    ),
  );
  tracker.updateEndpointSlice(
    makeSlice('lb', [
      { ip: '10.244.0.5', node: 'node-a' },
      { ip: '10.244.1.9', node: 'node-b' },
    ]),
  );
  tracker.updateService(
    makeService('dns', {
      clusterIP: '10.96.0.10',
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    }),
  );
}
