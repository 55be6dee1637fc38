import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from './errors.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';

const obj = (labels: Record<string, string>) => ({ metadata: { name: 'a', namespace: 'ns', labels } });

describe('parseLabelSelector', () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'db' }, false],
    ['app!=web', { app: 'db' }, true],
    ['app!=web', {}, true],
    ['app in (web, db)', { app: 'db' }, true],
    ['app in (web,db),tier notin (front)', { app: 'web', tier: 'front' }, false],
    ['app notin (web)', {}, true],
    ['app', { app: '' }, true],
    ['!app', { app: 'x' }, false],
    ['!app', { other: 'x' }, true],
    ['example.com/role=lb, app', { 'example.com/role': 'lb', app: 'x' }, true],
  ];
  for (const [selector, labels, expected] of cases) {
    test(`${selector} on ${JSON.stringify(labels)} is ${expected}`, () => {
      assert.equal(parseLabelSelector(selector)!(obj(labels)), expected);
    });
  }
  test('empty selects everything; malformed is a 400', () => {
    assert.equal(parseLabelSelector(''), undefined);
    assert.throws(
      () => parseLabelSelector('app=(x'),
      (e: unknown) => e instanceof ApiError && e.code === 400,
    );
  });
});

describe('parseFieldSelector', () => {
  const pod = {
    metadata: { name: 'p', namespace: 'ns' },
    spec: { nodeName: 'n1' },
    status: { phase: 'Running' },
  };
  test('selects pods by spec.nodeName, status.phase and metadata', () => {
    assert.equal(parseFieldSelector('spec.nodeName=n1,status.phase!=Failed', 'pods')!(pod), true);
    assert.equal(parseFieldSelector('spec.nodeName==n2', 'pods')!(pod), false);
    assert.equal(parseFieldSelector('metadata.name=p,metadata.namespace=ns', 'pods')!(pod), true);
  });
  test('rejects fields the kind does not support', () => {
    assert.throws(
      () => parseFieldSelector('spec.nodeName=n1', 'services'),
      (e: unknown) =>
        e instanceof ApiError && e.code === 400 && e.message === 'field label not supported: spec.nodeName',
    );
  });
});
