import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  controllerLogger,
  createLogger,
  DEFAULT_LOG_LEVEL,
  errorFields,
  InvalidLogLevelError,
  keyLogger,
  LOG_LEVEL_ENV,
  resolveLogLevel,
} from './logging.ts';
import { recordingDestination } from './testing/log-records.ts';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('resolveLogLevel', () => {
  test('the flag wins over the environment, which wins over the default', () => {
    assert.equal(resolveLogLevel('debug', { [LOG_LEVEL_ENV]: 'warn' }), 'debug');
    assert.equal(resolveLogLevel(undefined, { [LOG_LEVEL_ENV]: 'warn' }), 'warn');
    assert.equal(resolveLogLevel('', { [LOG_LEVEL_ENV]: 'warn' }), 'warn');
    assert.equal(resolveLogLevel(undefined, {}), DEFAULT_LOG_LEVEL);
    assert.equal(DEFAULT_LOG_LEVEL, 'info');
  });

  test('level names are case-insensitive', () => {
    assert.equal(resolveLogLevel('DEBUG', {}), 'debug');
  });

  test('an unknown level is rejected, naming its source and the supported values', () => {
    assert.throws(
      () => resolveLogLevel('loud', {}),
      (error: unknown) =>
        error instanceof InvalidLogLevelError &&
        error.message.startsWith(
          '--log-level: Unsupported value: "loud": supported values: "error", "warn", "info"',
        ),
    );
    assert.throws(() => resolveLogLevel(undefined, { [LOG_LEVEL_ENV]: 'trace' }), {
      message: /^PORTICO_LOG_LEVEL: Unsupported value: "trace": supported values: /,
    });
  });
});

describe('createLogger', () => {
  test('writes one JSON object per record with level, message and timestamp', async () => {
    const { destination, records } = recordingDestination();
    const logger = createLogger({ level: 'info', destination, fields: { component: 'controller-manager' } });
    logger.info('leader elected', { identity: 'replica-1' });
    await settle();
    assert.equal(records.length, 1);
    const [record] = records;
    assert.equal(record?.['level'], 'info');
    assert.equal(record?.['message'], 'leader elected');
    assert.equal(record?.['identity'], 'replica-1');
    assert.equal(record?.['component'], 'controller-manager');
    assert.ok(!Number.isNaN(Date.parse(String(record?.['timestamp']))));
  });

  test('records below the level are dropped', async () => {
    const { destination, records } = recordingDestination();
    const logger = createLogger({ level: 'warn', destination });
    logger.info('not shown');
    logger.debug('not shown either');
    logger.warn('shown');
    await settle();
    assert.deepEqual(
      records.map((record) => record['message']),
      ['shown'],
    );
  });

  test('the silent level writes nothing', async () => {
    const { destination, records } = recordingDestination();
    const logger = createLogger({ level: 'silent', destination });
    logger.error('not shown');
    await settle();
    assert.equal(records.length, 0);
  });

  test('controller and key children carry their fields on every record', async () => {
    const { destination, records } = recordingDestination();
    const perController = controllerLogger(createLogger({ level: 'info', destination }), 'endpointslice');
    const perKey = keyLogger(perController, 'default/web');
    perController.info('starting workers');
    perKey.info('slice created', { slice: 'web-abc12' });
    await settle();
    assert.deepEqual(
      records.map((record) => [record['controller'], record['key'], record['message']]),
      [
        ['endpointslice', undefined, 'starting workers'],
        ['endpointslice', 'default/web', 'slice created'],
      ],
    );
  });
});

describe('errorFields', () => {
  test('keeps the message and stack an Error would lose in JSON', () => {
    const error = new Error('connection refused');
    const fields = errorFields(error);
    assert.equal(fields.error, 'connection refused');
    assert.match(fields.stack ?? '', /logging\.test\.ts/);
    assert.deepEqual(JSON.parse(JSON.stringify({ error })), { error: {} }, 'why errorFields exists');
  });

  test('turns a thrown non-Error into text', () => {
    assert.deepEqual(errorFields('timeout'), { error: 'timeout' });
    assert.deepEqual(errorFields(404), { error: '404' });
  });
});
