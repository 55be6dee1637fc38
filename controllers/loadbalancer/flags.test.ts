import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { usage } from '../portico-controller-manager.ts';
import { parseLoadBalancerFlags } from './flags.ts';

describe('--load-balancer-class', () => {
  test("defaults to Portico's class", () => {
    assert.equal(parseLoadBalancerFlags(['--leader-elect=false']).loadBalancerClass, 'portico.dev/lb');
  });

  test('takes another prefixed class, in either flag spelling', () => {
    assert.equal(
      parseLoadBalancerFlags(['--load-balancer-class=example.com/edge']).loadBalancerClass,
      'example.com/edge',
    );
    assert.equal(parseLoadBalancerFlags(['--load-balancer-class', 'a.b/c']).loadBalancerClass, 'a.b/c');
  });

  test('refuses a class without a domain prefix, saying what is allowed', () => {
    assert.throws(() => parseLoadBalancerFlags(['--load-balancer-class', 'edge']), {
      message:
        '--load-balancer-class: Invalid value: "edge": must be a label-style name with a domain prefix, such as portico.dev/lb',
    });
  });

  test('is listed in the controller manager --help', () => {
    assert.match(usage(), /--load-balancer-class <class>/);
  });
});
