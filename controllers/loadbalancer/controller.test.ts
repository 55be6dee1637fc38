import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type CoreV1Event, PatchStrategy, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import {
  ANNOTATION_ALLOW_SHARED_IP,
  ANNOTATION_IP_POOL,
  FINALIZER_LOAD_BALANCER_CLEANUP,
} from '../../api/labels.ts';
import {
  LOAD_BALANCER_IP_POOL_PLURAL,
  LOAD_BALANCER_IP_POOL_VERSION,
  PORTICO_GROUP,
} from '../../api/loadbalancerippool.ts';
import { waitFor } from '../runtime/testing/harness.ts';
import type { PoolStatusBody } from './plan.ts';
import {
  type LoadBalancerTestCluster,
  loadBalancerService,
  startLoadBalancerTestCluster,
} from './test-cluster.ts';

const run = promisify(execFile);

describe('LoadBalancer controller against the local API server', () => {
  let cluster: LoadBalancerTestCluster;

  const read = async (name: string): Promise<V1Service | undefined> => {
    try {
      return await cluster.core.readNamespacedService({ name, namespace: 'default' });
    } catch {
      return undefined;
    }
  };
  const ipOf = (service: V1Service | undefined) => service?.status?.loadBalancer?.ingress?.[0]?.ip;
  const waitForIP = async (name: string): Promise<string> => {
    let ip: string | undefined;
    await waitFor(async () => {
      ip = ipOf(await read(name));
      return ip !== undefined;
    }, `an ingress IP on ${name}`);
    return ip ?? '';
  };
  const eventsOf = async (name: string): Promise<CoreV1Event[]> => {
    const list = await cluster.core.listNamespacedEvent({ namespace: 'default' });
    return list.items.filter((event) => event.involvedObject.name === name);
  };
  const waitForEvent = async (name: string, reason: string, message: RegExp): Promise<CoreV1Event> => {
    let found: CoreV1Event | undefined;
    await waitFor(async () => {
      found = (await eventsOf(name)).find(
        (event) => event.reason === reason && message.test(event.message ?? ''),
      );
      return found !== undefined;
    }, `a ${reason} Event on ${name} matching ${message}`);
    return found as CoreV1Event;
  };
  const kubectl = (...args: string[]) =>
    run('/usr/bin/kubectl', args, { env: { ...process.env, KUBECONFIG: cluster.server.kubeconfigPath } });
  const create = (service: V1Service) =>
    cluster.core.createNamespacedService({ namespace: 'default', body: service });
  const poolStatus = async (name: string): Promise<PoolStatusBody | undefined> => {
    const pool = (await cluster.custom.getClusterCustomObject({
      group: PORTICO_GROUP,
      version: LOAD_BALANCER_IP_POOL_VERSION,
      plural: LOAD_BALANCER_IP_POOL_PLURAL,
      name,
    })) as { status?: PoolStatusBody };
    return pool.status;
  };

  before(async () => {
    cluster = await startLoadBalancerTestCluster({
      general: { addresses: ['198.18.200.0/28'], avoidBuggyIPs: true },
      tiny: { addresses: ['198.18.201.10-198.18.201.11'], autoAssign: false },
      dns: { addresses: ['198.18.202.1/32'], autoAssign: false },
    });
  });
  after(async () => {
    await cluster?.close();
  });

  test('a LoadBalancer Service gets an IP from the pool in status, and kubectl get svc shows it in EXTERNAL-IP', async () => {
    await create(loadBalancerService('web'));
    const ip = await waitForIP('web');
    assert.equal(ip, '198.18.200.1', 'the lowest address after avoidBuggyIPs skips .0');
    const web = await read('web');
    assert.deepEqual(JSON.parse(JSON.stringify(web?.status?.loadBalancer?.ingress)), [{ ip, ipMode: 'VIP' }]);
    assert.ok(web?.metadata?.finalizers?.includes(FINALIZER_LOAD_BALANCER_CLEANUP));
    await waitForEvent('web', 'IPAllocated', /Assigned IP \["198\.18\.200\.1"\]/);
    const { stdout } = await kubectl('get', 'svc', 'web', '--namespace', 'default');
    const [header, row] = stdout.trim().split('\n');
    const column = (header ?? '').split(/\s+/).indexOf('EXTERNAL-IP');
    assert.notEqual(column, -1, stdout);
    assert.equal((row ?? '').split(/\s+/)[column], ip, stdout);
  });

  test('reconciling an unchanged Service writes nothing', async () => {
    await cluster.controller.whenIdle();
    const before = (await read('web'))?.metadata?.resourceVersion;
    await cluster.controller.reconcileService('default/web');
    assert.equal((await read('web'))?.metadata?.resourceVersion, before);
  });

  test('pool exhaustion leaves the next Service pending with a Warning Event; deleting one Service gives it the freed IP', async () => {
    const inTiny = { annotations: { [ANNOTATION_IP_POOL]: 'tiny' } };
    await create(loadBalancerService('t1', inTiny));
    assert.equal(await waitForIP('t1'), '198.18.201.10');
    await create(loadBalancerService('t2', inTiny));
    assert.equal(await waitForIP('t2'), '198.18.201.11');
    await create(loadBalancerService('t3', inTiny));
    const warning = await waitForEvent(
      't3',
      'AllocationFailed',
      /no available IPs in LoadBalancerIPPool "tiny"/,
    );
    assert.equal(warning.type, 'Warning');
    assert.equal(ipOf(await read('t3')), undefined);
    await waitFor(
      async () =>
        (await poolStatus('tiny'))?.conditions.find((c) => c.type === 'Exhausted')?.status === 'True',
      'pool tiny to report Exhausted',
    );
    const tiny = await poolStatus('tiny');
    assert.equal(tiny?.capacity, 2);
    assert.equal(tiny?.allocated, 2);
    const { stdout } = await kubectl('get', 'loadbalancerippools', 'tiny');
    const [header = '', row = ''] = stdout.split('\n');
    // kubectl pads columns to fixed widths; a cell runs from its header to the next header.
    const cell = (name: string, next: string) => row.slice(header.indexOf(name), header.indexOf(next)).trim();
    assert.deepEqual([cell('ALLOCATED', 'CAPACITY'), cell('CAPACITY', 'READY')], ['2', '2'], stdout);

    await cluster.core.deleteNamespacedService({ name: 't1', namespace: 'default' });
    await waitFor(
      async () => (await read('t1')) === undefined,
      't1 to be gone once its finalizer is removed',
    );
    assert.equal(await waitForIP('t3'), '198.18.201.10');
    await waitForEvent(
      't1',
      'IPReleased',
      /Released IP \["198\.18\.201\.10"\]: the Service is being deleted/,
    );
  });

  test('TCP/53 and UDP/53 with the same key share one IP; a third Service clashing on TCP/53 stays pending naming the clash', async () => {
    const sharing = { [ANNOTATION_IP_POOL]: 'dns', [ANNOTATION_ALLOW_SHARED_IP]: 'dns' };
    await create(
      loadBalancerService('dns-tcp', { annotations: sharing, ports: [{ port: 53, protocol: 'TCP' }] }),
    );
    await create(
      loadBalancerService('dns-udp', { annotations: sharing, ports: [{ port: 53, protocol: 'UDP' }] }),
    );
    assert.equal(await waitForIP('dns-tcp'), '198.18.202.1');
    assert.equal(await waitForIP('dns-udp'), '198.18.202.1');
    await create(
      loadBalancerService('dns-tcp-2', { annotations: sharing, ports: [{ port: 53, protocol: 'TCP' }] }),
    );
    await waitForEvent(
      'dns-tcp-2',
      'AllocationFailed',
      /IP 198\.18\.202\.1 shared under key "dns" is held by default\/dns-tcp, which already uses TCP\/53 on it/,
    );
    assert.equal(ipOf(await read('dns-tcp-2')), undefined);
  });

  test('a requested IP held by another Service is refused naming the holder', async () => {
    await create(
      loadBalancerService('thief', { annotations: { 'portico.dev/load-balancer-ips': '198.18.200.1' } }),
    );
    await waitForEvent(
      'thief',
      'AllocationFailed',
      /^requested IP 198\.18\.200\.1 is taken by default\/web$/,
    );
  });

  test('a Service with another loadBalancerClass is never touched (no finalizer, no status, no Event)', async () => {
    await create(loadBalancerService('elsewhere', { loadBalancerClass: 'example.com/other-lb' }));
    // A Portico Service created after it is reconciled after it, so when that one has an IP the
    // other has been seen.
    await create(loadBalancerService('marker'));
    await waitForIP('marker');
    await cluster.controller.whenIdle();
    const other = await read('elsewhere');
    assert.equal(other?.metadata?.finalizers, undefined);
    assert.equal(other?.status?.loadBalancer?.ingress, undefined);
    assert.deepEqual(await eventsOf('elsewhere'), []);
  });

  test('changing type away from LoadBalancer clears the status, releases the IP and removes the finalizer', async () => {
    await create(loadBalancerService('shrinking'));
    const ip = await waitForIP('shrinking');
    await cluster.core.replaceNamespacedService({
      name: 'shrinking',
      namespace: 'default',
      body: {
        ...((await read('shrinking')) as V1Service),
        spec: { ...(await read('shrinking'))?.spec, type: 'ClusterIP' },
      },
    });
    await waitFor(async () => {
      const service = await read('shrinking');
      return service?.metadata?.finalizers === undefined && ipOf(service) === undefined;
    }, 'shrinking to lose its finalizer and status');
    assert.equal(cluster.controller.allocator.holdersOf(ip).length, 0);
  });

  test('after a restart, allocation state is rebuilt from status before anything new is assigned', async () => {
    await cluster.stopController();
    const held = new Map<string, string>();
    for (const name of ['web', 'marker', 't2', 't3']) held.set(name, ipOf(await read(name)) ?? '');
    await create(loadBalancerService('newcomer'));
    await cluster.startController();
    const ip = await waitForIP('newcomer');
    assert.ok(![...held.values()].includes(ip), `newcomer got ${ip}, which another Service holds`);
    await cluster.controller.whenIdle();
    for (const [name, before] of held) assert.equal(ipOf(await read(name)), before, `${name} kept its IP`);
  });

  test('a pool edit that drops addresses in use keeps the Services on them and warns', async () => {
    const t2 = ipOf(await read('t2'));
    await cluster.custom.patchClusterCustomObject(
      {
        group: PORTICO_GROUP,
        version: LOAD_BALANCER_IP_POOL_VERSION,
        plural: LOAD_BALANCER_IP_POOL_PLURAL,
        name: 'tiny',
        body: { spec: { addresses: ['198.18.201.20/32'] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitForEvent(
      't2',
      'IPNotInPool',
      new RegExp(`keeps IP ${t2?.replaceAll('.', '\\.')} although no LoadBalancerIPPool holds it`),
    );
    assert.equal(ipOf(await read('t2')), t2);
    await waitFor(async () => {
      const condition = (await read('t2'))?.status?.conditions?.find(
        (c) => c.type === 'portico.dev/LoadBalancerIPInPool',
      );
      return condition?.status === 'False' && condition.reason === 'IPNotInPool';
    }, 't2 to carry the IPNotInPool condition');
    await create(loadBalancerService('t4', { annotations: { [ANNOTATION_IP_POOL]: 'tiny' } }));
    assert.equal(await waitForIP('t4'), '198.18.201.20');
    await waitFor(async () => {
      const status = await poolStatus('tiny');
      return status?.capacity === 1 && status.allocated === 1;
    }, 'pool tiny to count only its own address');
  });
});
