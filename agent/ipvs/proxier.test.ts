import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { CommandResult, CommandRunner } from '../iptables/proxier.ts';
import { ANNOTATION_IPVS_SCHEDULER } from '../state/service.ts';
import { makeService, makeSlice, TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import type { DesiredState } from '../state/types.ts';
import { IpvsCommandError, IpvsProxier, parseIpvsList } from './proxier.ts';
import { DEFAULT_IPVS_RENDER_OPTIONS, IPVS_JUMP_RULES } from './render.ts';

interface RecordedCommand {
  readonly line: string;
  readonly input: string | undefined;
}

/**
 * A runner that records every command and answers from `answer` (exit 0 with no output when it
 * returns undefined), standing in for a kernel without IPVS.
 */
function recordingRunner(answer: (line: string) => Partial<CommandResult> | undefined): {
  run: CommandRunner;
  commands: RecordedCommand[];
} {
  const commands: RecordedCommand[] = [];
  const run: CommandRunner = async (command, args, input) => {
    const line = [command, ...args].join(' ');
    commands.push({ line, input });
    return { code: 0, stdout: '', stderr: '', ...answer(line) };
  };
  return { run, commands };
}

function desiredOf(services: V1Service[], slices: V1EndpointSlice[]): DesiredState {
  const tracker = new ChangeTracker({ node: TEST_NODE });
  for (const service of services) tracker.updateService(service);
  for (const slice of slices) tracker.updateEndpointSlice(slice);
  return tracker.snapshot().desired.IPv4;
}

const ALL = { changedServices: 'all', existingObjects: new Set<string>() } as const;
const EMPTY_LISTING =
  'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';

const web = makeService('web', { clusterIP: '10.96.0.10' });
const webPods = makeSlice('web', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }]);

describe('IpvsProxier (recorded commands)', () => {
  test('the first sync creates the dummy interface, adds the addresses in one batch, restores ipsets and iptables, inserts the jumps and restores IPVS', async () => {
    const { run, commands } = recordingRunner((line) => {
      if (line === 'ip link show portico-ipvs0')
        return { code: 1, stderr: 'Device "portico-ipvs0" does not exist.' };
      if (line.startsWith('iptables -w -t') && line.includes(' -C ')) return { code: 1 };
      if (line === 'ipvsadm -Ln') return { stdout: EMPTY_LISTING };
      return undefined;
    });
    const proxier = new IpvsProxier({ family: 'IPv4', run });
    const ruleset = proxier.render(desiredOf([web], [webPods]), TEST_NODE, ALL);
    assert.deepEqual([...ruleset.ownedObjects], ['tcp:10.96.0.10:80']);
    await proxier.apply(ruleset);
    const jumpLines = IPVS_JUMP_RULES.flatMap((jump) => [
      `iptables -w -t ${jump.table} -C ${jump.chain} ${jump.args.join(' ')}`,
      `iptables -w -t ${jump.table} -I ${jump.chain} ${jump.args.join(' ')}`,
    ]);
    assert.deepEqual(
      commands.map((command) => command.line),
      [
        'ip link show portico-ipvs0',
        'ip link add portico-ipvs0 type dummy',
        'ip -o -4 address show dev portico-ipvs0',
        'ip -batch -',
        'ipset restore',
        'iptables-restore -w --noflush',
        ...jumpLines,
        'ipvsadm -Ln',
        'ipvsadm --restore',
      ],
    );
    const input = (line: string) => commands.find((command) => command.line === line)?.input;
    assert.equal(input('ip -batch -'), 'address add 10.96.0.10/32 dev portico-ipvs0\n');
    assert.equal(input('ipset restore'), ruleset.rules.ipsetRestore);
    assert.equal(input('iptables-restore -w --noflush'), ruleset.rules.iptablesRestore);
    assert.equal(
      input('ipvsadm --restore'),
      [
        '-A -t 10.96.0.10:80 -s rr',
        '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
        '-a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1',
        '',
      ].join('\n'),
    );
  });

  test('a second sync with nothing changed sends no IPVS commands and no address batch', async () => {
    const listing = `${EMPTY_LISTING}TCP  10.96.0.10:80 rr\n  -> 10.244.1.5:8080              Masq    1      0          0\n  -> 10.244.1.6:8080              Masq    1      0          0\n`;
    const { run, commands } = recordingRunner((line) => {
      if (line === 'ip -o -4 address show dev portico-ipvs0')
        return {
          stdout:
            '7: portico-ipvs0    inet 10.96.0.10/32 scope global portico-ipvs0\\       valid_lft forever preferred_lft forever\n',
        };
      if (line === 'ipvsadm -Ln') return { stdout: listing };
      return undefined;
    });
    const proxier = new IpvsProxier({ family: 'IPv4', run });
    await proxier.apply(proxier.render(desiredOf([web], [webPods]), TEST_NODE, ALL));
    const lines = commands.map((command) => command.line);
    assert.ok(!lines.includes('ip -batch -'), lines.join('\n'));
    assert.ok(!lines.includes('ipvsadm --restore'), lines.join('\n'));
    assert.ok(!lines.some((line) => line.includes(' -I ')), 'jumps already present are not inserted again');
  });

  test('scheduler per Service and ClientIP persistence reach ipvsadm; a stale virtual server and address are deleted', async () => {
    const sticky = makeService('sticky', {
      clusterIP: '10.96.0.20',
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    });
    sticky.metadata!.annotations = { [ANNOTATION_IPVS_SCHEDULER]: 'lc' };
    const listing = `${EMPTY_LISTING}TCP  10.96.0.99:80 rr\n  -> 10.244.9.9:8080              Masq    1      0          0\n`;
    const { run, commands } = recordingRunner((line) => {
      if (line === 'ip -o -4 address show dev portico-ipvs0')
        return { stdout: '7: portico-ipvs0    inet 10.96.0.99/32 scope global portico-ipvs0\n' };
      if (line === 'ipvsadm -Ln') return { stdout: listing };
      return undefined;
    });
    const proxier = new IpvsProxier({ family: 'IPv4', run });
    await proxier.apply(
      proxier.render(desiredOf([sticky], [makeSlice('sticky', [{ ip: '10.244.2.1' }])]), TEST_NODE, ALL),
    );
    const input = (line: string) => commands.find((command) => command.line === line)?.input;
    assert.equal(
      input('ip -batch -'),
      'address add 10.96.0.20/32 dev portico-ipvs0\naddress del 10.96.0.99/32 dev portico-ipvs0\n',
    );
    assert.equal(
      input('ipvsadm --restore'),
      '-A -t 10.96.0.20:80 -s lc -p 600\n-a -t 10.96.0.20:80 -r 10.244.2.1:8080 -m -w 1\n-D -t 10.96.0.99:80\n',
    );
  });

  test('an unsupported scheduler annotation gets the --ipvs-scheduler default and one warning per Service, never a failed sync', async () => {
    const { run, commands } = recordingRunner((line) =>
      line === 'ipvsadm -Ln' ? { stdout: EMPTY_LISTING } : undefined,
    );
    const warnings: Readonly<Record<string, string>>[] = [];
    const proxier = new IpvsProxier({
      family: 'IPv4',
      run,
      render: { ...DEFAULT_IPVS_RENDER_OPTIONS, defaultScheduler: 'sed' },
      onWarning: (message, fields) => warnings.push({ message, ...fields }),
    });
    const annotated = (value: string) => {
      const service = makeService('web', { clusterIP: '10.96.0.10' });
      service.metadata!.annotations = { [ANNOTATION_IPVS_SCHEDULER]: value };
      return service;
    };
    const sync = (value: string) =>
      proxier.apply(proxier.render(desiredOf([annotated(value)], [webPods]), TEST_NODE, ALL));
    await sync('maglev');
    await sync('maglev');
    const restore = commands.find((command) => command.line === 'ipvsadm --restore');
    assert.match(restore!.input!, /^-A -t 10\.96\.0\.10:80 -s sed$/m);
    const expected = {
      message: 'unsupported IPVS scheduler; using the default',
      service: 'default/web',
      scheduler: 'sed',
      error:
        'metadata.annotations[portico.dev/ipvs-scheduler]: Unsupported value: "maglev": supported values: "dh", "lc", "nq", "rr", "sed", "sh"',
    };
    assert.deepEqual(warnings, [expected]);
    // Fixed, then broken again: the relapse is news.
    await sync('nq');
    await sync('maglev');
    assert.equal(warnings.length, 2);
  });

  test('graceful termination: a leaving TCP real server gets weight 0, and the drain timer deletes it once its connections are gone', async () => {
    let connections = '3      1';
    const listing = () =>
      `${EMPTY_LISTING}TCP  10.96.0.10:80 rr\n  -> 10.244.1.5:8080              Masq    1      0          0\n  -> 10.244.1.6:8080              Masq    1      ${connections}\n`;
    const restores: string[] = [];
    const { run } = recordingRunner((line) => {
      if (line === 'ipvsadm -Ln') return { stdout: listing() };
      return undefined;
    });
    const recording: CommandRunner = async (command, args, input) => {
      if (command === 'ipvsadm' && args[0] === '--restore') restores.push(input ?? '');
      return run(command, args, input);
    };
    const proxier = new IpvsProxier({ family: 'IPv4', run: recording, drainCheckMs: 20 });
    const onlyFirst = makeSlice('web', [{ ip: '10.244.1.5' }]);
    await proxier.apply(proxier.render(desiredOf([web], [onlyFirst]), TEST_NODE, ALL));
    assert.deepEqual(restores, ['-e -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 0\n']);
    // Still busy at the first check: nothing more happens.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(restores.length, 1);
    connections = '0      0';
    const deadline = Date.now() + 2_000;
    while (restores.length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    proxier.stop();
    assert.deepEqual(restores[1], '-d -t 10.96.0.10:80 -r 10.244.1.6:8080\n');
  });

  test('a drain that outlasts the timeout deletes the real server even with live connections', async () => {
    let now = 0;
    const listing = `${EMPTY_LISTING}TCP  10.96.0.10:80 rr\n  -> 10.244.1.6:8080              Masq    0      5          0\n`;
    const restores: string[] = [];
    const { run } = recordingRunner((line) => (line === 'ipvsadm -Ln' ? { stdout: listing } : undefined));
    const recording: CommandRunner = async (command, args, input) => {
      if (command === 'ipvsadm' && args[0] === '--restore') restores.push(input ?? '');
      return run(command, args, input);
    };
    const proxier = new IpvsProxier({
      family: 'IPv4',
      run: recording,
      drainCheckMs: 10,
      drainTimeoutMs: 1_000,
      now: () => now,
    });
    const desired = desiredOf([web], [makeSlice('web', [{ ip: '10.244.1.5' }])]);
    // The kernel shows 10.244.1.6 at weight 0 but this proxier never started draining it: start now.
    await proxier.apply(proxier.render(desired, TEST_NODE, ALL));
    assert.deepEqual(restores, [
      '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1\n-e -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 0\n',
    ]);
    now = 1_000;
    const deadline = Date.now() + 2_000;
    while (restores.length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    proxier.stop();
    assert.match(restores[1] ?? '', /-d -t 10\.96\.0\.10:80 -r 10\.244\.1\.6:8080\n/);
  });

  test('a refused ipvsadm restore rejects apply with the command and its stderr', async () => {
    const { run } = recordingRunner((line) => {
      if (line === 'ipvsadm -Ln') return { stdout: EMPTY_LISTING };
      if (line === 'ipvsadm --restore') return { code: 1, stderr: 'Memory allocation problem' };
      return undefined;
    });
    const proxier = new IpvsProxier({ family: 'IPv4', run });
    await assert.rejects(
      proxier.apply(proxier.render(desiredOf([web], [webPods]), TEST_NODE, ALL)),
      (error) => {
        assert.ok(error instanceof IpvsCommandError);
        assert.match(error.message, /ipvsadm --restore exited with 1: Memory allocation problem/);
        return true;
      },
    );
  });

  test('lostState: a missing dummy interface or entry chain means a full sync', async () => {
    let missing = '';
    const { run } = recordingRunner((line) => (line === missing ? { code: 1 } : undefined));
    const proxier = new IpvsProxier({ family: 'IPv4', run });
    assert.equal(await proxier.lostState(), false);
    missing = 'ip link show portico-ipvs0';
    assert.equal(await proxier.lostState(), true);
    missing = 'iptables -w -t nat -S PORTICO-SERVICES';
    assert.equal(await proxier.lostState(), true);
  });

  test("cleanup deletes only the virtual servers on Portico's addresses, then jumps, chains, ipsets, addresses and the interface", async () => {
    const listing = `${EMPTY_LISTING}TCP  10.96.0.10:80 rr\n  -> 10.244.1.5:8080              Masq    1      0          0\nTCP  192.0.2.7:80 wlc\n`;
    let addresses = '7: portico-ipvs0    inet 10.96.0.10/32 scope global portico-ipvs0\n';
    const { run, commands } = recordingRunner((line) => {
      if (line === 'ipvsadm -Ln') return { stdout: listing };
      if (line.startsWith('ip -o') && line.includes('address show')) return { stdout: addresses };
      if (line === 'ip -batch -') addresses = '';
      if (line.includes(' -D ')) return { code: 1 };
      if (line === 'ipset list -n') return { stdout: 'PORTICO-CLUSTER-IP\nPORTICO-LB\nsomeone-else\n' };
      return undefined;
    });
    await new IpvsProxier({ family: 'IPv4', run }).cleanup();
    const input = (line: string) => commands.find((command) => command.line === line)?.input;
    assert.equal(input('ipvsadm --restore'), '-D -t 10.96.0.10:80\n');
    assert.equal(input('ipset restore'), 'destroy PORTICO-CLUSTER-IP\ndestroy PORTICO-LB\n');
    assert.equal(input('ip -batch -'), 'address del 10.96.0.10/32 dev portico-ipvs0\n');
    const restore = input('iptables-restore -w --noflush') ?? '';
    assert.match(restore, /^\*filter\n:PORTICO-FORWARD - \[0:0\]\n/);
    assert.match(restore, /\*nat\n:PORTICO-SERVICES - \[0:0\]\n/);
    assert.match(restore, /-X PORTICO-SERVICES\n/);
    assert.match(restore, /-X PORTICO-MARK-MASQ\nCOMMIT\n$/);
    assert.equal(commands.filter((command) => command.line.includes(' -D ')).length, IPVS_JUMP_RULES.length);
    assert.equal(commands.at(-1)?.line, 'ip link delete portico-ipvs0');
  });
});

describe('parseIpvsList', () => {
  test('reads schedulers, persistence, weights and connection counts of the asked family only', () => {
    const output = `${EMPTY_LISTING}TCP  10.96.0.10:80 sh persistent 10800\n  -> 10.244.1.5:8080              Masq    0      2          7\nUDP  [fd00::10]:53 rr\n  -> [fd00:244::5]:5353           Masq    1      0          0\n`;
    const v4 = parseIpvsList(output, 'IPv4');
    assert.deepEqual([...v4.servers.keys()], ['tcp:10.96.0.10:80']);
    const server = v4.servers.get('tcp:10.96.0.10:80')!;
    assert.equal(server.scheduler, 'sh');
    assert.equal(server.persistenceSeconds, 10800);
    assert.deepEqual([...server.realServers], [['10.244.1.5:8080', 0]]);
    assert.deepEqual(v4.connections.get('tcp:10.96.0.10:80')?.get('10.244.1.5:8080'), {
      active: 2,
      inactive: 7,
    });
    const v6 = parseIpvsList(output, 'IPv6');
    assert.deepEqual([...v6.servers.keys()], ['udp:[fd00::10]:53']);
    assert.deepEqual([...v6.servers.get('udp:[fd00::10]:53')!.realServers], [['[fd00:244::5]:5353', 1]]);
  });
});
