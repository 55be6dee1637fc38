import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import { ClusterIPRange, parseServiceClusterIPRanges } from '../../allocators/cluster-ip-range.ts';
import { InMemoryConfigMapClient } from '../../allocators/memory-configmap-client.ts';
import { NodePortRange } from '../../allocators/node-port-range.ts';
import type { AdmissionRequest, AdmissionResponse, JsonPatchOperation } from '../admission.ts';
import { ServiceAllocators } from './allocators.ts';
import { mutateServices } from './mutate.ts';

const namespace = 'portico-system';

function setup(cidrs = '198.19.0.0/16') {
  const client = new InMemoryConfigMapClient();
  const allocators = new ServiceAllocators({
    client,
    namespace,
    ranges: { serviceCIDRs: parseServiceClusterIPRanges(cidrs), nodePortRange: new NodePortRange() },
  });
  return { client, allocators, mutate: mutateServices(allocators) };
}

let uid = 0;
function request(service: V1Service, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  uid++;
  return {
    uid: `uid-${uid}`,
    operation: 'CREATE',
    name: service.metadata?.name,
    namespace: 'default',
    object: service,
    ...extra,
  };
}

/** Applies the webhook's patch the way the API server does (Portico only patches /spec keys). */
function patched(service: V1Service, response: AdmissionResponse): V1Service {
  assert.equal(response.allowed, true, JSON.stringify(response.status));
  const result = structuredClone(service);
  if (response.patch === undefined) return result;
  const operations = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as JsonPatchOperation[];
  for (const operation of operations) {
    const key = operation.path.replace(/^\/spec\/?/, '');
    const spec = (result.spec ?? {}) as Record<string, unknown>;
    if (key === '') result.spec = (operation as { value: V1Service['spec'] }).value;
    else if (operation.op === 'remove') delete spec[key];
    else spec[key] = operation.value;
  }
  return result;
}

function svc(name: string, spec: V1Service['spec']): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec };
}

const web = (name = 'web') => svc(name, { selector: { app: name }, ports: [{ port: 80 }] });

describe('mutating Service webhook, CREATE', () => {
  test('a ClusterIP Service gets one IPv4 address from the dynamic band and SingleStack fields', async () => {
    const { mutate } = setup();
    const result = patched(web(), await mutate(request(web())));
    const ip = result.spec!.clusterIP!;
    assert.deepEqual(result.spec!.clusterIPs, [ip]);
    assert.deepEqual(result.spec!.ipFamilies, ['IPv4']);
    assert.equal(result.spec!.ipFamilyPolicy, 'SingleStack');
    const range = new ClusterIPRange('198.19.0.0/16');
    const offset = range.offsetOf(ip);
    assert.ok(offset !== undefined && offset >= range.staticBandSize, `${ip} is in the dynamic band`);
  });

  test('a requested IP that another Service holds is denied at spec.clusterIPs[0] with 422', async () => {
    const { mutate } = setup();
    const first = svc('a', { clusterIP: '198.19.0.10', ports: [{ port: 80 }] });
    patched(first, await mutate(request(first)));
    const second = svc('b', { clusterIP: '198.19.0.10', ports: [{ port: 80 }] });
    const response = await mutate(request(second));
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
    assert.equal(response.status?.reason, 'Invalid');
    assert.equal(
      response.status?.message,
      'Service "b" is invalid: spec.clusterIPs[0]: Invalid value: "198.19.0.10": provided IP is already allocated',
    );
  });

  test('a NodePort Service keeps its requested 30080 and a second one asking 30080 is denied', async () => {
    const { mutate } = setup();
    const demo = svc('demo', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] });
    const result = patched(demo, await mutate(request(demo)));
    assert.equal(result.spec!.ports![0]!.nodePort, 30080);
    const other = svc('other', { type: 'NodePort', ports: [{ port: 81, nodePort: 30080 }] });
    const response = await mutate(request(other));
    assert.equal(response.status?.code, 422);
    assert.equal(
      response.status?.message,
      'Service "other" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    );
  });

  test('a denied node port gives back the ClusterIP taken earlier in the same request', async () => {
    const { mutate, allocators } = setup();
    const demo = svc('demo', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] });
    patched(demo, await mutate(request(demo)));
    const other = svc('other', {
      type: 'NodePort',
      clusterIP: '198.19.7.7',
      ports: [{ port: 81, nodePort: 30080 }],
    });
    assert.equal((await mutate(request(other))).allowed, false);
    const stored = await allocators.clusterIP('IPv4')!.store.read();
    const allocator = allocators.clusterIP('IPv4')!.newAllocator();
    allocator.restore(stored);
    assert.equal(allocator.has('198.19.7.7'), false);
    assert.equal(allocator.used, 1, 'only demo keeps its address');
  });

  test('nodePort 29999 is denied with the valid range in the message, and nothing is allocated', async () => {
    const { mutate, client } = setup();
    const low = svc('low', { type: 'NodePort', ports: [{ port: 80, nodePort: 29999 }] });
    const response = await mutate(request(low));
    assert.equal(
      response.status?.message,
      'Service "low" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767',
    );
    assert.equal(client.writes, 0);
  });

  test('two unnamed ports are denied before anything is allocated', async () => {
    const { mutate, client } = setup();
    const twoPorts = svc('two', { ports: [{ port: 80 }, { port: 443 }] });
    const response = await mutate(request(twoPorts));
    assert.equal(response.allowed, false);
    assert.match(response.status!.message, /spec\.ports\[0\]\.name: Required value/);
    assert.equal(client.writes, 0);
  });

  test('TCP and UDP on one port number share one node port', async () => {
    const { mutate, allocators } = setup();
    const dns = svc('dns', {
      type: 'NodePort',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        { name: 'metrics', port: 9153, protocol: 'TCP' },
      ],
    });
    const ports = patched(dns, await mutate(request(dns))).spec!.ports!;
    assert.ok(ports[0]!.nodePort);
    assert.equal(ports[0]!.nodePort, ports[1]!.nodePort);
    assert.notEqual(ports[2]!.nodePort, ports[0]!.nodePort);
    const allocator = allocators.nodePorts.newAllocator();
    allocator.restore(await allocators.nodePorts.store.read());
    assert.equal(allocator.used, 2);
  });

  test('a requested node port on one protocol is used for the other protocol of the same port', async () => {
    const { mutate } = setup();
    const dns = svc('dns', {
      type: 'NodePort',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30053 },
      ],
    });
    const ports = patched(dns, await mutate(request(dns))).spec!.ports!;
    assert.deepEqual(
      ports.map((port) => port.nodePort),
      [30053, 30053],
    );
  });

  test('allocateLoadBalancerNodePorts false allocates no node port but honours a requested one', async () => {
    const { mutate } = setup();
    const lb = svc('lb', {
      type: 'LoadBalancer',
      allocateLoadBalancerNodePorts: false,
      ports: [
        { name: 'a', port: 80 },
        { name: 'b', port: 81, nodePort: 31081 },
      ],
    });
    const ports = patched(lb, await mutate(request(lb))).spec!.ports!;
    assert.equal(ports[0]!.nodePort, undefined);
    assert.equal(ports[1]!.nodePort, 31081);
  });

  test('a LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort', async () => {
    const { mutate } = setup();
    const lb = svc('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] });
    const spec = patched(lb, await mutate(request(lb))).spec!;
    assert.ok(spec.healthCheckNodePort! >= 30000 && spec.healthCheckNodePort! <= 32767);
    assert.notEqual(spec.healthCheckNodePort, spec.ports![0]!.nodePort);
    assert.equal(spec.allocateLoadBalancerNodePorts, true);
  });

  test('a requested healthCheckNodePort that is taken is an internal error, as upstream reports it', async () => {
    const { mutate } = setup();
    const holder = svc('holder', { type: 'NodePort', ports: [{ port: 80, nodePort: 30500 }] });
    patched(holder, await mutate(request(holder)));
    const lb = svc('lb', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 30500,
      ports: [{ port: 80 }],
    });
    const response = await mutate(request(lb));
    assert.equal(response.status?.code, 500);
    assert.equal(
      response.status?.message,
      'Internal error occurred: failed to allocate requested HealthCheck NodePort 30500: provided port is already allocated',
    );
  });

  test('an IPv6-only cluster gives IPv6 addresses', async () => {
    const { mutate } = setup('fd00:198:19::/108');
    const spec = patched(web(), await mutate(request(web()))).spec!;
    assert.deepEqual(spec.ipFamilies, ['IPv6']);
    assert.match(spec.clusterIP!, /^fd00:198:19::/);
  });

  test('headless and ExternalName Services get no address', async () => {
    const { mutate, client } = setup();
    const headless = svc('headless', { clusterIP: 'None', selector: { app: 'x' }, ports: [{ port: 80 }] });
    const spec = patched(headless, await mutate(request(headless))).spec!;
    assert.deepEqual(spec.clusterIPs, ['None']);
    assert.deepEqual(spec.ipFamilies, ['IPv4']);
    const external = svc('ext', { type: 'ExternalName', externalName: 'example.com' });
    const externalSpec = patched(external, await mutate(request(external))).spec!;
    assert.equal(externalSpec.clusterIP, undefined);
    assert.equal(client.writes, 0);
  });

  test('PreferDualStack on a dual-stack cluster gets one address per family, default family first', async () => {
    const { mutate } = setup('198.19.0.0/16,fd00:198:19::/108');
    const dual = svc('dual', {
      ipFamilyPolicy: 'PreferDualStack',
      selector: { a: 'b' },
      ports: [{ port: 80 }],
    });
    const spec = patched(dual, await mutate(request(dual))).spec!;
    assert.deepEqual(spec.ipFamilies, ['IPv4', 'IPv6']);
    assert.match(spec.clusterIPs![0]!, /^198\.19\./);
    assert.match(spec.clusterIPs![1]!, /^fd00:198:19::/);
    assert.equal(spec.clusterIP, spec.clusterIPs![0]);
  });

  test('RequireDualStack on a single-stack cluster is denied', async () => {
    const { mutate } = setup();
    const dual = svc('dual', {
      ipFamilyPolicy: 'RequireDualStack',
      selector: { a: 'b' },
      ports: [{ port: 80 }],
    });
    const response = await mutate(request(dual));
    assert.match(response.status!.message, /this cluster is not configured for dual-stack services/);
  });

  test('a dry run reports values and conflicts but writes nothing', async () => {
    const { mutate, client } = setup();
    const demo = svc('demo', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] });
    patched(demo, await mutate(request(demo)));
    const writes = client.writes;
    const probe = web('probe');
    const spec = patched(probe, await mutate(request(probe, { dryRun: true }))).spec!;
    assert.match(spec.clusterIP!, /^198\.19\./);
    const clash = svc('clash', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] });
    assert.equal((await mutate(request(clash, { dryRun: true }))).status?.code, 422);
    assert.equal(client.writes, writes);
  });

  test('a full range is an internal error, as kube-apiserver reports it', async () => {
    const { mutate } = setup('198.19.0.0/30');
    for (const name of ['a', 'b']) patched(web(name), await mutate(request(web(name))));
    const response = await mutate(request(web('c')));
    assert.equal(response.status?.code, 500);
    assert.equal(
      response.status?.message,
      'Internal error occurred: failed to allocate a serviceIP: range is full',
    );
  });
});

describe('mutating Service webhook, UPDATE', () => {
  async function created(mutate: ReturnType<typeof setup>['mutate'], service: V1Service) {
    return patched(service, await mutate(request(service)));
  }

  test('ClusterIP to NodePort keeps the address and allocates node ports', async () => {
    const { mutate } = setup();
    const old = await created(mutate, web());
    const next = structuredClone(old);
    next.spec!.type = 'NodePort';
    const spec = patched(next, await mutate(request(next, { operation: 'UPDATE', oldObject: old }))).spec!;
    assert.equal(spec.clusterIP, old.spec!.clusterIP);
    assert.ok(spec.ports![0]!.nodePort);
  });

  test('NodePort to ClusterIP clears the node ports in the patch and releases nothing itself', async () => {
    const { mutate, allocators } = setup();
    const old = await created(
      mutate,
      svc('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }),
    );
    const next = structuredClone(old);
    next.spec!.type = 'ClusterIP';
    delete next.spec!.externalTrafficPolicy;
    const spec = patched(next, await mutate(request(next, { operation: 'UPDATE', oldObject: old }))).spec!;
    assert.equal(spec.ports![0]!.nodePort, undefined);
    const allocator = allocators.nodePorts.newAllocator();
    allocator.restore(await allocators.nodePorts.store.read());
    assert.equal(allocator.has(30080), true, 'released by the release controller once the update is stored');
  });

  test('ExternalName to ClusterIP allocates an address; ClusterIP to ExternalName clears it', async () => {
    const { mutate } = setup();
    const old = await created(mutate, svc('x', { type: 'ExternalName', externalName: 'example.com' }));
    const next = structuredClone(old);
    next.spec = { type: 'ClusterIP', selector: { app: 'x' }, ports: [{ port: 80 }] };
    const withIP = patched(next, await mutate(request(next, { operation: 'UPDATE', oldObject: old })));
    assert.match(withIP.spec!.clusterIP!, /^198\.19\./);
    const back = structuredClone(withIP);
    back.spec!.type = 'ExternalName';
    back.spec!.externalName = 'example.com';
    delete back.spec!.ports;
    delete back.spec!.internalTrafficPolicy;
    const spec = patched(back, await mutate(request(back, { operation: 'UPDATE', oldObject: withIP }))).spec!;
    assert.equal(spec.clusterIP, undefined);
    assert.equal(spec.clusterIPs, undefined);
    assert.equal(spec.ipFamilies, undefined);
  });

  test('changing the ClusterIP is denied as immutable', async () => {
    const { mutate } = setup();
    const old = await created(mutate, web());
    const next = structuredClone(old);
    next.spec!.clusterIP = '198.19.9.9';
    next.spec!.clusterIPs = ['198.19.9.9'];
    const response = await mutate(request(next, { operation: 'UPDATE', oldObject: old }));
    assert.match(response.status!.message, /spec\.clusterIPs\[0\]: Invalid value: .*may not change once set/);
  });

  test('Cluster to Local traffic policy on a LoadBalancer allocates a healthCheckNodePort', async () => {
    const { mutate } = setup();
    const old = await created(mutate, svc('lb', { type: 'LoadBalancer', ports: [{ port: 80 }] }));
    const next = structuredClone(old);
    next.spec!.externalTrafficPolicy = 'Local';
    const spec = patched(next, await mutate(request(next, { operation: 'UPDATE', oldObject: old }))).spec!;
    assert.ok(spec.healthCheckNodePort);
    assert.equal(spec.ports![0]!.nodePort, old.spec!.ports![0]!.nodePort);
  });
});
