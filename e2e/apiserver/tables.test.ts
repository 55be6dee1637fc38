import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';
import { evaluateColumnPath, humanDuration, toTable } from './tables.ts';

interface Table {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string; continue?: string };
  columnDefinitions: { name: string; type: string; format: string; priority: number }[];
  rows: { cells: unknown[]; object?: Record<string, unknown>; conditions?: unknown[] }[];
}

function resourceType(group: string, plural: string): ResourceType {
  const found = BUILTIN_RESOURCES.find((r) => r.group === group && r.plural === plural);
  assert.ok(found, `${group}/${plural} is served`);
  return found;
}

function print(group: string, plural: string, objects: object[]): Table {
  return toTable(resourceType(group, plural), objects, {
    includeObject: 'None',
    resourceVersion: '7',
  }) as Table;
}

/** Column name → cell of the only row. */
function row(table: Table, index = 0): Record<string, unknown> {
  const cells = table.rows[index]!.cells;
  return Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, cells[i]]));
}

function ago(seconds: number): string {
  return new Date(Date.now() - seconds * 1000).toISOString();
}

const meta = (name: string, ageSeconds = 30, extra: Record<string, unknown> = {}) => ({
  name,
  namespace: 'default',
  creationTimestamp: ago(ageSeconds),
  ...extra,
});

describe('humanDuration', () => {
  test('prints durations as upstream HumanDuration', () => {
    const cases: [number, string][] = [
      [-5, '<invalid>'],
      [-1, '0s'],
      [0, '0s'],
      [119, '119s'],
      [120, '2m'],
      [150, '2m30s'],
      [600, '10m'],
      [179 * 60, '179m'],
      [3 * 3600, '3h'],
      [3 * 3600 + 60 * 5, '3h5m'],
      [8 * 3600 + 60 * 5, '8h'],
      [47 * 3600, '47h'],
      [50 * 3600, '2d2h'],
      [72 * 3600, '3d'],
      [10 * 86400, '10d'],
      [3 * 365 * 86400 + 86400 * 4, '3y4d'],
      [9 * 365 * 86400, '9y'],
    ];
    for (const [seconds, expected] of cases)
      assert.equal(humanDuration(seconds * 1000), expected, `${seconds}s`);
  });
});

describe('toTable', () => {
  test('returns a meta.k8s.io/v1 Table with list metadata and objects per includeObject', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: meta('p'), spec: { containers: [{ name: 'c' }] } };
    const pods = resourceType('', 'pods');
    const none = toTable(pods, [pod], {
      includeObject: 'None',
      resourceVersion: '12',
      continue: 'abc',
    }) as Table;
    assert.equal(none.kind, 'Table');
    assert.equal(none.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(none.metadata, { resourceVersion: '12', continue: 'abc' });
    assert.equal(none.rows[0]!.object, undefined);
    const full = toTable(pods, [pod], { includeObject: 'Object', resourceVersion: '12' }) as Table;
    assert.deepEqual(full.rows[0]!.object, pod);
    assert.deepEqual(full.metadata, { resourceVersion: '12' });
    const partial = toTable(pods, [pod], { includeObject: 'Metadata', resourceVersion: '12' }) as Table;
    assert.deepEqual(partial.rows[0]!.object, {
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: pod.metadata,
    });
  });

  test('pods: READY STATUS RESTARTS AGE, wide IP NODE NOMINATED NODE READINESS GATES', () => {
    const running = {
      metadata: meta('web', 200),
      spec: {
        nodeName: 'node-1',
        containers: [{ name: 'a' }, { name: 'b' }],
        readinessGates: [{ conditionType: 'example.com/lb' }],
      },
      status: {
        phase: 'Running',
        podIP: '198.18.0.7',
        podIPs: [{ ip: '198.18.0.7' }],
        conditions: [{ type: 'example.com/lb', status: 'True' }],
        containerStatuses: [
          {
            name: 'a',
            ready: true,
            restartCount: 2,
            state: { running: {} },
            lastState: { terminated: { finishedAt: ago(90) } },
          },
          { name: 'b', ready: false, restartCount: 0, state: { running: {} } },
        ],
      },
    };
    const table = print('', 'pods', [running]);
    assert.deepEqual(
      table.columnDefinitions.map((c) => [c.name, c.priority]),
      [
        ['Name', 0],
        ['Ready', 0],
        ['Status', 0],
        ['Restarts', 0],
        ['Age', 0],
        ['IP', 1],
        ['Node', 1],
        ['Nominated Node', 1],
        ['Readiness Gates', 1],
      ],
    );
    assert.deepEqual(row(table), {
      Name: 'web',
      Ready: '1/2',
      Status: 'Running',
      Restarts: '2 (90s ago)',
      Age: '3m20s',
      IP: '198.18.0.7',
      Node: 'node-1',
      'Nominated Node': '<none>',
      'Readiness Gates': '1/1',
    });
  });

  test('pods: waiting reasons, init containers, terminating and completed pods', () => {
    const pending = { metadata: meta('new'), spec: { containers: [{ name: 'a' }] } };
    const crashing = {
      metadata: meta('crash'),
      spec: { containers: [{ name: 'a' }] },
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'a', restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } },
        ],
      },
    };
    const initializing = {
      metadata: meta('init'),
      spec: { initContainers: [{ name: 'i1' }, { name: 'i2' }], containers: [{ name: 'a' }] },
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          { name: 'i1', state: { terminated: { exitCode: 0 } } },
          { name: 'i2', state: { running: {} } },
        ],
      },
    };
    const terminating = {
      metadata: meta('going', 30, { deletionTimestamp: ago(0) }),
      spec: { containers: [{ name: 'a' }] },
      status: { phase: 'Running' },
    };
    const completed = {
      metadata: meta('done'),
      spec: { containers: [{ name: 'a' }] },
      status: {
        phase: 'Succeeded',
        containerStatuses: [{ name: 'a', state: { terminated: { exitCode: 0, reason: 'Completed' } } }],
      },
    };
    const table = print('', 'pods', [pending, crashing, initializing, terminating, completed]);
    assert.deepEqual(
      table.rows.map((r) => r.cells.slice(0, 4)),
      [
        ['new', '0/1', '', '0'],
        ['crash', '0/1', 'CrashLoopBackOff', '4'],
        ['init', '0/1', 'Init:1/2', '0'],
        ['going', '0/1', 'Terminating', '0'],
        ['done', '0/1', 'Completed', '0'],
      ],
    );
    assert.equal(row(table)['IP'], '<none>');
    assert.deepEqual(table.rows[4]!.conditions, [
      {
        type: 'Completed',
        status: 'True',
        reason: 'Succeeded',
        message: 'The pod has completed successfully.',
      },
    ]);
  });

  test('services: TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE, wide SELECTOR', () => {
    const services = [
      {
        metadata: meta('plain'),
        spec: {
          clusterIP: '10.96.0.10',
          clusterIPs: ['10.96.0.10'],
          ports: [{ port: 8080, protocol: 'TCP' }],
          selector: { b: '2', a: '1' },
        },
      },
      {
        metadata: meta('np'),
        spec: {
          type: 'NodePort',
          clusterIP: '10.96.0.11',
          ports: [
            { port: 80, nodePort: 30080, protocol: 'TCP' },
            { port: 53, nodePort: 30053, protocol: 'UDP' },
          ],
          externalIPs: ['80.11.12.10'],
        },
      },
      { metadata: meta('lb'), spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
      {
        metadata: meta('lb2'),
        spec: { type: 'LoadBalancer', ports: [{ port: 80 }], externalIPs: ['198.18.0.9'] },
        status: { loadBalancer: { ingress: [{ ip: '198.18.1.1' }, { hostname: 'lb.example.com' }] } },
      },
      { metadata: meta('ext'), spec: { type: 'ExternalName', externalName: 'my.database.example.com' } },
    ];
    const table = print('', 'services', services);
    assert.deepEqual(
      table.columnDefinitions.map((c) => (c.priority > 0 ? `${c.name}*` : c.name)),
      ['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age', 'Selector*'],
    );
    assert.deepEqual(
      table.rows.map((r) => [...r.cells.slice(0, 5), r.cells[6]]),
      [
        ['plain', 'ClusterIP', '10.96.0.10', '<none>', '8080/TCP', 'a=1,b=2'],
        ['np', 'NodePort', '10.96.0.11', '80.11.12.10', '80:30080/TCP,53:30053/UDP', '<none>'],
        ['lb', 'LoadBalancer', '<none>', '<pending>', '80/TCP', '<none>'],
        ['lb2', 'LoadBalancer', '<none>', '198.18.1.1,lb.example.com,198.18.0.9', '80/TCP', '<none>'],
        ['ext', 'ExternalName', '<none>', 'my.database.example.com', '<none>', '<none>'],
      ],
    );
  });

  test('endpoints and endpointslices list at most three addresses', () => {
    const endpoints = {
      metadata: meta('svc'),
      subsets: [
        { addresses: [{ ip: '198.18.0.1' }, { ip: '198.18.0.2' }], ports: [{ port: 80 }, { port: 443 }] },
        { addresses: [{ ip: '2001:db8::1' }], ports: [{ port: 80 }] },
      ],
    };
    const empty = { metadata: meta('none') };
    assert.deepEqual(
      print('', 'endpoints', [endpoints, empty]).rows.map((r) => r.cells.slice(0, 2)),
      [
        ['svc', '198.18.0.1:80,198.18.0.2:80,198.18.0.1:443 + 2 more...'],
        ['none', '<none>'],
      ],
    );
    const slice = {
      metadata: meta('svc-abc12'),
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 80 }, { name: 'named' }],
      endpoints: [{ addresses: ['198.18.0.1'] }, { addresses: ['198.18.0.2'] }],
    };
    const bare = { metadata: meta('svc-empty'), addressType: 'IPv4' };
    const table = print('discovery.k8s.io', 'endpointslices', [slice, bare]);
    assert.deepEqual(
      table.columnDefinitions.map((c) => c.name),
      ['Name', 'AddressType', 'Ports', 'Endpoints', 'Age'],
    );
    assert.deepEqual(
      table.rows.map((r) => r.cells.slice(0, 4)),
      [
        ['svc-abc12', 'IPv4', '80,named', '198.18.0.1,198.18.0.2'],
        ['svc-empty', 'IPv4', '<unset>', '<unset>'],
      ],
    );
  });

  test('deployments and replicasets: replica counts, wide CONTAINERS IMAGES SELECTOR', () => {
    const template = {
      spec: {
        containers: [
          { name: 'web', image: 'nginx:1' },
          { name: 'log', image: 'busybox' },
        ],
      },
    };
    const deployment = {
      metadata: meta('web'),
      spec: {
        replicas: 3,
        selector: {
          matchLabels: { app: 'web' },
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a'] }],
        },
        template,
      },
      status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
    };
    assert.deepEqual(row(print('apps', 'deployments', [deployment])), {
      Name: 'web',
      Ready: '2/3',
      'Up-to-date': 3,
      Available: 2,
      Age: '30s',
      Containers: 'web,log',
      Images: 'nginx:1,busybox',
      Selector: 'app=web,tier in (a,b)',
    });
    const replicaSet = {
      metadata: meta('web-5d4'),
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
      status: { replicas: 2, readyReplicas: 1 },
    };
    assert.deepEqual(print('apps', 'replicasets', [replicaSet]).rows[0]!.cells.slice(0, 4), [
      'web-5d4',
      2,
      2,
      1,
    ]);
  });

  test('daemonsets: DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE, wide CONTAINERS IMAGES SELECTOR', () => {
    const daemonSet = {
      metadata: meta('agent'),
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: {
          spec: {
            nodeSelector: { 'kubernetes.io/os': 'linux', disk: 'ssd' },
            containers: [{ name: 'agent', image: 'portico/agent:1' }],
          },
        },
      },
      status: {
        desiredNumberScheduled: 5,
        currentNumberScheduled: 4,
        numberReady: 3,
        updatedNumberScheduled: 2,
        numberAvailable: 1,
      },
    };
    assert.deepEqual(row(print('apps', 'daemonsets', [daemonSet])), {
      Name: 'agent',
      Desired: 5,
      Current: 4,
      Ready: 3,
      'Up-to-date': 2,
      Available: 1,
      'Node Selector': 'disk=ssd,kubernetes.io/os=linux',
      Age: '30s',
      Containers: 'agent',
      Images: 'portico/agent:1',
      Selector: 'app=agent',
    });
    const bare = { metadata: meta('bare'), spec: { template: { spec: { containers: [] } } } };
    assert.deepEqual(print('apps', 'daemonsets', [bare]).rows[0]!.cells.slice(1, 7), [
      0,
      0,
      0,
      0,
      0,
      '<none>',
    ]);
  });

  test('poddisruptionbudgets: MIN AVAILABLE and MAX UNAVAILABLE as set, N/A when not, ALLOWED DISRUPTIONS', () => {
    const byCount = {
      metadata: meta('cm'),
      spec: { minAvailable: 1 },
      status: { disruptionsAllowed: 1 },
    };
    const byPercent = { metadata: meta('web', 90), spec: { maxUnavailable: '25%' } };
    const table = print('policy', 'poddisruptionbudgets', [byCount, byPercent]);
    assert.deepEqual(
      table.columnDefinitions.map((c) => c.name),
      ['Name', 'Min Available', 'Max Unavailable', 'Allowed Disruptions', 'Age'],
    );
    assert.deepEqual(table.rows[0]!.cells, ['cm', '1', 'N/A', 1, '30s']);
    assert.deepEqual(table.rows[1]!.cells, ['web', 'N/A', '25%', 0, '90s']);
  });

  test('rolebindings and clusterrolebindings: ROLE as kind/name, wide subjects split by kind', () => {
    const binding = {
      metadata: meta('readers'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [
        { kind: 'User', name: 'alice' },
        { kind: 'Group', name: 'ops' },
        { kind: 'ServiceAccount', name: 'agent', namespace: 'portico-system' },
        { kind: 'User', name: 'bob' },
        { kind: 'ServiceAccount', name: 'cm', namespace: 'portico-system' },
      ],
    };
    const expected = {
      Name: 'readers',
      Role: 'ClusterRole/view',
      Age: '30s',
      Users: 'alice, bob',
      Groups: 'ops',
      ServiceAccounts: 'portico-system/agent, portico-system/cm',
    };
    assert.deepEqual(row(print('rbac.authorization.k8s.io', 'rolebindings', [binding])), expected);
    assert.deepEqual(row(print('rbac.authorization.k8s.io', 'clusterrolebindings', [binding])), expected);
    const table = print('rbac.authorization.k8s.io', 'rolebindings', [binding]);
    assert.deepEqual(
      table.columnDefinitions.filter((c) => c.priority > 0).map((c) => c.name),
      ['Users', 'Groups', 'ServiceAccounts'],
    );
  });

  test('roles and clusterroles print NAME and CREATED AT, as upstream has no printer for them', () => {
    const created = ago(30);
    const role = { metadata: { ...meta('reader'), creationTimestamp: created }, rules: [] };
    for (const plural of ['roles', 'clusterroles']) {
      const table = print('rbac.authorization.k8s.io', plural, [role]);
      assert.deepEqual(
        table.columnDefinitions.map((c) => c.name),
        ['Name', 'Created At'],
      );
      assert.deepEqual(table.rows[0]!.cells, ['reader', created]);
    }
  });

  test('nodes: STATUS ROLES AGE VERSION, wide addresses and node info', () => {
    const node = {
      metadata: {
        name: 'node-1',
        creationTimestamp: ago(30),
        labels: { 'node-role.kubernetes.io/control-plane': '' },
      },
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [
          { type: 'InternalIP', address: '198.18.0.2' },
          { type: 'Hostname', address: 'node-1' },
        ],
        nodeInfo: {
          kubeletVersion: 'v1.32.0',
          osImage: 'Portico',
          kernelVersion: '6.1',
          containerRuntimeVersion: '',
        },
      },
    };
    const bare = { metadata: { name: 'node-2', creationTimestamp: ago(30) } };
    const table = print('', 'nodes', [node, bare]);
    assert.deepEqual(row(table), {
      Name: 'node-1',
      Status: 'Ready,SchedulingDisabled',
      Roles: 'control-plane',
      Age: '30s',
      Version: 'v1.32.0',
      'Internal-IP': '198.18.0.2',
      'External-IP': '<none>',
      'OS-Image': 'Portico',
      'Kernel-Version': '6.1',
      'Container-Runtime': '<unknown>',
    });
    assert.deepEqual(table.rows[1]!.cells.slice(0, 3), ['node-2', 'Unknown', '<none>']);
  });

  test('events print alike from core/v1 and events.k8s.io/v1', () => {
    const core = {
      metadata: meta('svc.1'),
      involvedObject: { kind: 'Service', name: 'svc', fieldPath: '' },
      reason: 'IPAllocated',
      message: 'allocated 10.96.0.10 ',
      type: 'Normal',
      source: { component: 'portico-controller' },
      firstTimestamp: ago(300),
      lastTimestamp: ago(60),
      count: 3,
    };
    const modern = {
      metadata: meta('svc.2'),
      regarding: { kind: 'Service', name: 'svc' },
      reason: 'IPAllocated',
      note: 'allocated 10.96.0.10',
      type: 'Normal',
      eventTime: ago(30),
      reportingController: 'portico-controller',
      reportingInstance: 'replica-a',
    };
    const expectedColumns = [
      'Last Seen',
      'Type',
      'Reason',
      'Object',
      'Subobject',
      'Source',
      'Message',
      'First Seen',
      'Count',
      'Name',
    ];
    const coreTable = print('', 'events', [core]);
    assert.deepEqual(
      coreTable.columnDefinitions.map((c) => c.name),
      expectedColumns,
    );
    assert.deepEqual(coreTable.rows[0]!.cells, [
      '60s',
      'Normal',
      'IPAllocated',
      'service/svc',
      '',
      'portico-controller',
      'allocated 10.96.0.10',
      '5m',
      3,
      'svc.1',
    ]);
    assert.deepEqual(print('events.k8s.io', 'events', [modern]).rows[0]!.cells, [
      '30s',
      'Normal',
      'IPAllocated',
      'service/svc',
      '',
      'portico-controller, replica-a',
      'allocated 10.96.0.10',
      '30s',
      1,
      'svc.2',
    ]);
  });

  test('small kinds: namespaces, configmaps, secrets, leases, serviceaccounts, webhook configurations, CRDs', () => {
    const cells = (group: string, plural: string, object: object): unknown[] =>
      print(group, plural, [object]).rows[0]!.cells;
    assert.deepEqual(cells('', 'namespaces', { metadata: meta('ns'), status: { phase: 'Active' } }), [
      'ns',
      'Active',
      '30s',
    ]);
    assert.deepEqual(
      cells('', 'configmaps', { metadata: meta('cm'), data: { a: '1' }, binaryData: { b: '' } }),
      ['cm', 2, '30s'],
    );
    assert.deepEqual(
      cells('', 'secrets', {
        metadata: meta('s'),
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': '', 'tls.key': '' },
      }),
      ['s', 'kubernetes.io/tls', 2, '30s'],
    );
    assert.deepEqual(
      cells('coordination.k8s.io', 'leases', {
        metadata: meta('leader'),
        spec: { holderIdentity: 'replica-a' },
      }),
      ['leader', 'replica-a', '30s'],
    );
    assert.deepEqual(cells('', 'serviceaccounts', { metadata: meta('default') }), ['default', 0, '30s']);
    assert.deepEqual(
      cells('admissionregistration.k8s.io', 'mutatingwebhookconfigurations', {
        metadata: meta('portico'),
        webhooks: [{}, {}],
      }),
      ['portico', 2, '30s'],
    );
    const created = '2026-01-02T03:04:05Z';
    const crd = print('apiextensions.k8s.io', 'customresourcedefinitions', [
      { metadata: { name: 'pools.portico.dev', creationTimestamp: created } },
    ]);
    assert.deepEqual(
      crd.columnDefinitions.map((c) => [c.name, c.type]),
      [
        ['Name', 'string'],
        ['Created At', 'date'],
      ],
    );
    assert.deepEqual(crd.rows[0]!.cells, ['pools.portico.dev', created]);
  });

  test('custom resources print their additionalPrinterColumns, priority > 0 as wide, or NAME AGE by default', () => {
    const base: ResourceType = {
      group: 'portico.dev',
      version: 'v1alpha1',
      kind: 'LoadBalancerIPPool',
      plural: 'loadbalancerippools',
      singular: 'loadbalancerippool',
      namespaced: false,
      shortNames: [],
      categories: [],
      status: true,
      scale: false,
      verbs: [],
      hasSpec: true,
    };
    const withColumns: ResourceType = {
      ...base,
      custom: {
        schema: {},
        printerColumns: [
          { name: 'CIDR', type: 'string', jsonPath: '.spec.cidrs[0]' },
          { name: 'Free', type: 'integer', jsonPath: '.status.free' },
          { name: 'Auto', type: 'boolean', jsonPath: '.spec.autoAssign', priority: 1 },
          { name: 'Missing', type: 'string', jsonPath: '.status.nothing', priority: 1 },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
      },
    };
    const pool = {
      metadata: { name: 'default', creationTimestamp: ago(150) },
      spec: { cidrs: ['198.18.10.0/24'], autoAssign: true },
      status: { free: 254 },
    };
    const table = toTable(withColumns, [pool], { includeObject: 'None', resourceVersion: '1' }) as Table;
    assert.deepEqual(
      table.columnDefinitions.map((c) => [c.name, c.type, c.priority]),
      [
        ['Name', 'string', 0],
        ['CIDR', 'string', 0],
        ['Free', 'integer', 0],
        ['Auto', 'boolean', 1],
        ['Missing', 'string', 1],
        ['Age', 'date', 0],
      ],
    );
    assert.deepEqual(table.rows[0]!.cells, ['default', '198.18.10.0/24', 254, true, null, '2m30s']);
    const plain = toTable({ ...base, custom: { schema: {}, printerColumns: [] } }, [pool], {
      includeObject: 'None',
      resourceVersion: '1',
    }) as Table;
    assert.deepEqual(
      plain.columnDefinitions.map((c) => c.name),
      ['Name', 'Age'],
    );
    assert.deepEqual(plain.rows[0]!.cells, ['default', '2m30s']);
  });

  test('evaluateColumnPath follows dotted paths, indexes and escaped dots', () => {
    const object = {
      metadata: { labels: { 'app.kubernetes.io/name': 'portico' } },
      spec: { list: [{ a: 1 }, { a: 2 }] },
    };
    assert.equal(evaluateColumnPath(object, '.spec.list[1].a'), 2);
    assert.equal(evaluateColumnPath(object, '.metadata.labels.app\\.kubernetes\\.io/name'), 'portico');
    assert.equal(evaluateColumnPath(object, "{.metadata.labels['app.kubernetes.io/name']}"), 'portico');
    assert.equal(evaluateColumnPath(object, '.spec.nothing.deeper'), undefined);
  });

  test('evaluateColumnPath evaluates filters and wildcards and returns the first result, as the CRD table convertor', () => {
    const object = {
      spec: { ports: [{ port: 80 }, { port: 443 }] },
      status: {
        conditions: [
          { type: 'Synced', status: 'False', observedGeneration: 1 },
          { type: 'Ready', status: 'True', observedGeneration: 3 },
        ],
      },
    };
    const conditions = '.status.conditions';
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.type=="Ready")].status`), 'True');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.type == 'Synced')].status`), 'False');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.type!="Synced")].type`), 'Ready');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.observedGeneration>2)].type`), 'Ready');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.observedGeneration<=1)].type`), 'Synced');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.status)].type`), 'Synced');
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.type=="Gone")].status`), undefined);
    assert.equal(evaluateColumnPath(object, `${conditions}[?(@.reason)].type`), undefined);
    assert.equal(evaluateColumnPath(object, '.spec.ports[*].port'), 80);
    assert.equal(evaluateColumnPath(object, '.spec.ports[-1].port'), 443);
    assert.equal(evaluateColumnPath(object, '{.spec.ports[?(@.port==443)].port}'), 443);
    assert.equal(evaluateColumnPath(object, '.spec.ports[?(@.port=="443")].port'), undefined);
    assert.equal(evaluateColumnPath(object, '.spec.ports[oops'), undefined);
  });

  test('a custom READY column with a condition filter prints the condition status, and nothing without one', () => {
    const pools: ResourceType = {
      ...resourceType('', 'configmaps'),
      group: 'portico.dev',
      plural: 'loadbalancerippools',
      custom: {
        schema: {},
        printerColumns: [
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        ],
      },
    };
    const ready = {
      metadata: meta('a'),
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    const table = toTable(pools, [ready, { metadata: meta('b') }], {
      includeObject: 'None',
      resourceVersion: '1',
    }) as Table;
    assert.deepEqual(
      table.rows.map((r) => r.cells),
      [
        ['a', 'True'],
        ['b', null],
      ],
    );
  });
});
