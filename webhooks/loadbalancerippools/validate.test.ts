import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  LOAD_BALANCER_IP_POOL_API_VERSION,
  LOAD_BALANCER_IP_POOL_KIND,
  type LoadBalancerIPPool,
  type LoadBalancerIPPoolSpec,
} from '../../api/loadbalancerippool.ts';
import { type FieldError, formatFieldError } from '../validation/field-errors.ts';
import {
  type PoolCache,
  poolMessageToFieldError,
  validateLoadBalancerIPPool,
  validateLoadBalancerIPPoolsWebhook,
  validateLoadBalancerIPPoolUpdate,
} from './validate.ts';

function pool(
  name: string,
  spec: Partial<LoadBalancerIPPoolSpec> & { addresses: string[] },
): LoadBalancerIPPool {
  return {
    apiVersion: LOAD_BALANCER_IP_POOL_API_VERSION,
    kind: LOAD_BALANCER_IP_POOL_KIND,
    metadata: { name },
    spec,
  };
}

const existing = [
  pool('other', { addresses: ['198.18.200.0/25', 'fd00:198:18::/120'] }),
  pool('ranged', { addresses: ['198.18.201.10-198.18.201.20'] }),
  pool('broken', { addresses: ['not-an-address'] }),
];

function messages(errors: readonly FieldError[]): string[] {
  return errors.map(formatFieldError);
}

describe('validateLoadBalancerIPPool', () => {
  const cases: { name: string; addresses: string[]; priority?: number; want: string[] }[] = [
    {
      name: 'a pool clear of every other is valid',
      addresses: ['198.18.202.0/24', '198.18.200.200-198.18.200.210'],
      want: [],
    },
    {
      name: 'a prefix longer than the family allows',
      addresses: ['198.18.203.0/24', '10.0.0.0/33'],
      want: [
        'spec.addresses[1]: Invalid value: "10.0.0.0/33": the prefix length must be between 0 and 32 for IPv4',
      ],
    },
    {
      name: 'host bits set after the prefix',
      addresses: ['198.18.203.1/24'],
      want: [
        'spec.addresses[0]: Invalid value: "198.18.203.1/24": must be a network address with no bits set after the prefix (198.18.203.0/24)',
      ],
    },
    {
      name: 'a range whose first address is after its last',
      addresses: ['198.18.203.20-198.18.203.10'],
      want: [
        'spec.addresses[0]: Invalid value: "198.18.203.20-198.18.203.10": the first address of a range must not be after the last',
      ],
    },
    {
      name: 'a range mixing IPv4 and IPv6',
      addresses: ['198.18.203.1-fd00:198:18::1'],
      want: [
        'spec.addresses[0]: Invalid value: "198.18.203.1-fd00:198:18::1": the first and last address of a range must be of the same IP family',
      ],
    },
    {
      name: 'no addresses at all',
      addresses: [],
      want: ['spec.addresses: Required value: a pool needs at least one address'],
    },
    {
      name: 'a negative priority',
      addresses: ['198.18.203.0/24'],
      priority: -1,
      want: ['spec.priority: Invalid value: -1: must be greater than or equal to 0'],
    },
    {
      name: 'two entries of the pool overlapping each other',
      addresses: ['198.18.203.0/24', '198.18.203.128/25'],
      want: [
        'spec.addresses[1]: Invalid value: "198.18.203.128/25": overlaps spec.addresses[0] (198.18.203.0/24)',
      ],
    },
    {
      name: 'a CIDR overlapping another pool names it',
      addresses: ['198.18.200.0/24'],
      want: [
        'spec.addresses[0]: Invalid value: "198.18.200.0/24": overlaps "198.18.200.0/25" of LoadBalancerIPPool "other"',
      ],
    },
    {
      name: 'a range overlapping another pool’s range, and an IPv6 overlap, each at its entry',
      addresses: ['198.18.202.0/24', '198.18.201.20-198.18.201.30', 'fd00:198:18::80/121'],
      want: [
        'spec.addresses[1]: Invalid value: "198.18.201.20-198.18.201.30": overlaps "198.18.201.10-198.18.201.20" of LoadBalancerIPPool "ranged"',
        'spec.addresses[2]: Invalid value: "fd00:198:18::80/121": overlaps "fd00:198:18::/120" of LoadBalancerIPPool "other"',
      ],
    },
    {
      name: 'the same numbers in another family do not overlap',
      addresses: ['::c612:c800/120'],
      want: [],
    },
  ];
  for (const { name, addresses, priority, want } of cases) {
    test(name, () => {
      const candidate = pool('new', { addresses, ...(priority === undefined ? {} : { priority }) });
      assert.deepEqual(messages(validateLoadBalancerIPPool(candidate, existing)), want);
    });
  }

  test('the pool’s own stored version is not an overlap', () => {
    const edited = pool('other', { addresses: ['198.18.200.0/24'] });
    assert.deepEqual(validateLoadBalancerIPPool(edited, existing), []);
  });

  test('an UPDATE is denied only for problems the stored pool did not have', () => {
    const overlapping = [...existing, pool('late', { addresses: ['198.18.200.64/26'] })];
    const stored = pool('late', { addresses: ['198.18.200.64/26'] });
    const relabelled: LoadBalancerIPPool = { ...stored, metadata: { name: 'late', labels: { team: 'a' } } };
    assert.deepEqual(validateLoadBalancerIPPoolUpdate(relabelled, stored, overlapping), []);
    const grown = pool('late', { addresses: ['198.18.200.64/26', '198.18.201.0/28'] });
    assert.deepEqual(messages(validateLoadBalancerIPPoolUpdate(grown, stored, overlapping)), [
      'spec.addresses[1]: Invalid value: "198.18.201.0/28": overlaps "198.18.201.10-198.18.201.20" of LoadBalancerIPPool "ranged"',
    ]);
  });

  test('messages that do not follow the field-error form keep their text at spec.addresses', () => {
    assert.deepEqual(poolMessageToFieldError('something else', ['a']), {
      type: 'Invalid',
      field: 'spec.addresses',
      value: { goSyntax: '[]string{"a"}' },
      detail: 'something else',
    });
  });
});

describe('LoadBalancerIPPool webhook', () => {
  const cache = (synced: boolean): PoolCache => ({ list: () => existing, hasSynced: () => synced });
  const webhook = validateLoadBalancerIPPoolsWebhook(cache(true));

  test('admits a valid pool', async () => {
    const response = await webhook({
      uid: 'a',
      operation: 'CREATE',
      object: pool('new', { addresses: ['198.18.202.0/24'] }),
    });
    assert.deepEqual(response, { uid: 'a', allowed: true });
  });

  test('denies an overlap with a 422 naming the kind, the field and the other pool', async () => {
    const response = await webhook({
      uid: 'b',
      operation: 'CREATE',
      object: pool('new', { addresses: ['198.18.200.100-198.18.200.130'] }),
    });
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
    assert.equal(
      response.status?.message,
      'LoadBalancerIPPool.portico.dev "new" is invalid: spec.addresses[0]: Invalid value: "198.18.200.100-198.18.200.130": overlaps "198.18.200.0/25" of LoadBalancerIPPool "other"',
    );
    assert.deepEqual(response.status?.details, {
      name: 'new',
      group: 'portico.dev',
      kind: 'LoadBalancerIPPool',
      causes: [
        {
          reason: 'FieldValueInvalid',
          field: 'spec.addresses[0]',
          message:
            'Invalid value: "198.18.200.100-198.18.200.130": overlaps "198.18.200.0/25" of LoadBalancerIPPool "other"',
        },
      ],
    });
  });

  test('denies with a retryable 500 until the pools cache has synced', async () => {
    const response = await validateLoadBalancerIPPoolsWebhook(cache(false))({
      uid: 'c',
      operation: 'CREATE',
      object: pool('new', { addresses: ['198.18.202.0/24'] }),
    });
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 500);
  });

  test('leaves deletes and status updates alone', async () => {
    const bad = pool('other', { addresses: ['10.0.0.0/33'] });
    assert.equal((await webhook({ uid: 'd', operation: 'DELETE', oldObject: bad })).allowed, true);
    assert.equal(
      (await webhook({ uid: 'e', operation: 'UPDATE', subResource: 'status', object: bad, oldObject: bad }))
        .allowed,
      true,
    );
  });
});
