import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyDefaults } from './defaults.ts';
import type { JsonObject } from './patch.ts';
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';

function resource(group: string, kind: string): ResourceType {
  const found = BUILTIN_RESOURCES.find((r) => r.group === group && r.kind === kind);
  assert.ok(found, `${group}/${kind} is served`);
  return found;
}

test('Endpoints ports default to TCP before admission sees them, as kube-apiserver does', () => {
  const endpoints: JsonObject = {
    subsets: [{ addresses: [{ ip: '198.18.0.5' }], ports: [{ port: 9376 }, { port: 53, protocol: 'UDP' }] }],
  };
  applyDefaults(resource('', 'Endpoints'), endpoints);
  assert.deepEqual(endpoints.subsets, [
    {
      addresses: [{ ip: '198.18.0.5' }],
      ports: [
        { port: 9376, protocol: 'TCP' },
        { port: 53, protocol: 'UDP' },
      ],
    },
  ]);
});

test('EndpointSlice ports default to protocol TCP and an empty name', () => {
  const slice: JsonObject = {
    addressType: 'IPv4',
    endpoints: [],
    ports: [{ port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }],
  };
  applyDefaults(resource('discovery.k8s.io', 'EndpointSlice'), slice);
  assert.deepEqual(slice.ports, [
    { port: 80, name: '', protocol: 'TCP' },
    { name: 'dns', port: 53, protocol: 'UDP' },
  ]);
});
