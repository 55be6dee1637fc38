import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { planScheduling, type SchedulingPlan } from './scheduler.ts';

function node(
  name: string,
  options: { ready?: boolean; unschedulable?: boolean; labels?: Record<string, string> } = {},
): V1Node {
  return {
    metadata: { name, labels: options.labels ?? {} },
    spec: { unschedulable: options.unschedulable ?? false },
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
  };
}

function pod(
  name: string,
  options: {
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    created?: number;
    phase?: string;
    deleting?: boolean;
  } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'default',
      creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, options.created ?? 0)),
      ...(options.deleting === true ? { deletionTimestamp: new Date(Date.UTC(2026, 0, 2)) } : {}),
    },
    spec: {
      containers: [{ name: 'web', image: 'demo' }],
      ...(options.nodeName === undefined ? {} : { nodeName: options.nodeName }),
      ...(options.nodeSelector === undefined ? {} : { nodeSelector: options.nodeSelector }),
    },
    status: { phase: options.phase ?? 'Pending' },
  };
}

function bound(plan: SchedulingPlan): Record<string, string> {
  return Object.fromEntries(plan.bindings.map((b) => [b.name, b.nodeName]));
}

const cases: {
  name: string;
  pods: V1Pod[];
  nodes: V1Node[];
  bindings: Record<string, string>;
  unschedulable?: Record<string, string>;
}[] = [
  {
    name: 'spreads new pods by count, oldest first, ties by node name',
    pods: [pod('c', { created: 3 }), pod('a', { created: 1 }), pod('b', { created: 2 })],
    nodes: [node('node-1'), node('node-0')],
    bindings: { a: 'node-0', b: 'node-1', c: 'node-0' },
  },
  {
    name: 'counts pods that already name a node, so new pods go where there are fewer',
    pods: [pod('x', { nodeName: 'node-0' }), pod('y', { nodeName: 'node-0' }), pod('new')],
    nodes: [node('node-0'), node('node-1')],
    bindings: { new: 'node-1' },
  },
  {
    name: 'terminal and deleting pods free their slot',
    pods: [
      pod('done', { nodeName: 'node-0', phase: 'Succeeded' }),
      pod('going', { nodeName: 'node-0', deleting: true }),
      pod('busy', { nodeName: 'node-1' }),
      pod('new'),
      pod('unbound-deleting', { deleting: true }),
    ],
    nodes: [node('node-0'), node('node-1')],
    bindings: { new: 'node-0' },
  },
  {
    name: 'honours nodeSelector',
    pods: [pod('zoned', { nodeSelector: { 'topology.kubernetes.io/zone': 'b' } })],
    nodes: [
      node('node-0', { labels: { 'topology.kubernetes.io/zone': 'a' } }),
      node('node-1', { labels: { 'topology.kubernetes.io/zone': 'b' } }),
    ],
    bindings: { zoned: 'node-1' },
  },
  {
    name: 'skips unready and cordoned nodes, and says why when nothing fits',
    pods: [pod('p'), pod('picky', { nodeSelector: { disk: 'ssd' } })],
    nodes: [node('node-0', { ready: false }), node('node-1', { unschedulable: true }), node('node-2')],
    bindings: { p: 'node-2' },
    unschedulable: {
      picky:
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were not ready, 1 node(s) were unschedulable.",
    },
  },
  {
    name: 'no nodes at all',
    pods: [pod('p')],
    nodes: [],
    bindings: {},
    unschedulable: { p: '0/0 nodes are available:' },
  },
];

describe('planScheduling', () => {
  test('counts from an index add to the pods passed in', () => {
    const plan = planScheduling(
      [pod('new'), pod('bound', { nodeName: 'node-1' })],
      [node('node-0'), node('node-1')],
      new Map([['node-0', 2]]),
    );
    assert.deepEqual(bound(plan), { new: 'node-1' }, 'node-0 has 2 indexed pods, node-1 has 1 passed in');
  });

  for (const c of cases) {
    test(c.name, () => {
      const plan = planScheduling(c.pods, c.nodes);
      assert.deepEqual(bound(plan), c.bindings);
      assert.deepEqual(
        Object.fromEntries(plan.unschedulable.map((u) => [u.name, u.message])),
        c.unschedulable ?? {},
      );
    });
  }
});
