import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FlagError, parseAgentFlags, parseDuration } from './flags.ts';

describe('portico-agent flags', () => {
  test('defaults follow kube-proxy: iptables, 1s/30s, 0.0.0.0:10256 and 127.0.0.1:10249, the lower-cased hostname', () => {
    assert.deepEqual(parseAgentFlags([], 'Worker-1'), {
      mode: 'iptables',
      hostname: 'worker-1',
      kubeconfig: undefined,
      clusterCIDRs: [],
      nodePortAddresses: [],
      masqueradeAll: false,
      serviceProxyName: '',
      minSyncPeriodMs: 1000,
      syncPeriodMs: 30_000,
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      cleanup: false,
      noFallback: false,
      ipvsScheduler: 'rr',
      logLevel: undefined,
    });
  });

  test('every flag is read', () => {
    const config = parseAgentFlags(
      [
        '--mode=ipvs',
        '--hostname-override',
        'node-7',
        '--kubeconfig',
        '/tmp/kc',
        '--cluster-cidr',
        '10.244.0.0/16,fd00:10:244::/48',
        '--nodeport-addresses',
        '198.18.255.0/24',
        '--masquerade-all',
        '--service-proxy-name',
        'portico',
        '--min-sync-period',
        '250ms',
        '--sync-period',
        '1m30s',
        '--healthz-bind-address',
        '[::]:10256',
        '--metrics-bind-address',
        '0.0.0.0:0',
        '--cleanup',
        '--no-fallback',
        '--ipvs-scheduler',
        'sh',
        '--log-level',
        'debug',
      ],
      'ignored',
    );
    assert.deepEqual(config, {
      mode: 'ipvs',
      hostname: 'node-7',
      kubeconfig: '/tmp/kc',
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/48'],
      nodePortAddresses: ['198.18.255.0/24'],
      masqueradeAll: true,
      serviceProxyName: 'portico',
      minSyncPeriodMs: 250,
      syncPeriodMs: 90_000,
      healthzBindAddress: '[::]:10256',
      metricsBindAddress: '0.0.0.0:0',
      cleanup: true,
      noFallback: true,
      ipvsScheduler: 'sh',
      logLevel: 'debug',
    });
  });

  test('--help returns null', () => {
    assert.equal(parseAgentFlags(['--help'], 'h'), null);
  });

  test('bad flags are FlagErrors phrased with the flag, the value and what is allowed', () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /Unknown option '--bogus'/],
      [
        ['--mode', 'userspace'],
        /--mode: Unsupported value: "userspace": supported values: "iptables", "nftables", "ipvs"/,
      ],
      [
        ['--cluster-cidr', '10.0.0.0/33'],
        /--cluster-cidr: Invalid value: "10.0.0.0\/33": must be a valid CIDR/,
      ],
      [['--sync-period', '30'], /--sync-period: Invalid value: "30": must be a duration/],
      [
        ['--min-sync-period', '1m', '--sync-period', '30s'],
        /--min-sync-period: Invalid value: "1m": must be no greater than --sync-period/,
      ],
      [
        ['--healthz-bind-address', '10256'],
        /--healthz-bind-address: Invalid value: "10256": must be host:port/,
      ],
      [['--log-level', 'loud'], /--log-level: Unsupported value: "loud"/],
      [
        ['--ipvs-scheduler', 'wrr'],
        /--ipvs-scheduler: Unsupported value: "wrr": supported values: "dh", "lc", "nq", "rr", "sed", "sh"/,
      ],
      [['--hostname-override', ' '], /--hostname-override: Required value/],
    ];
    for (const [argv, message] of cases)
      assert.throws(
        () => parseAgentFlags(argv, 'h'),
        (error: unknown) => error instanceof FlagError && message.test(error.message),
        argv.join(' '),
      );
  });

  test('durations accept Go syntax', () => {
    assert.equal(parseDuration('1h2m3s4ms', '--x'), 3_723_004);
    assert.equal(parseDuration('1.5s', '--x'), 1500);
    assert.throws(() => parseDuration('1s ', '--x'), FlagError);
  });
});
