import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanupRules, createProxier } from './agent.ts';
import { parseAgentFlags } from './flags.ts';
import type { CommandRunner } from './iptables/proxier.ts';
import { ANNOTATION_IPVS_SCHEDULER } from './state/service.ts';
import { makeService, makeSlice, TEST_NODE } from './state/test-fixtures.ts';
import { ChangeTracker } from './state/tracker.ts';

function recordingRunner(): { run: CommandRunner; lines: string[] } {
  const lines: string[] = [];
  const run: CommandRunner = async (command, args) => {
    const line = [command, ...args].join(' ');
    lines.push(line);
    // Deleting a rule that is not there fails, which ends cleanup's delete-until-gone loops.
    return { code: args.includes('-D') ? 1 : 0, stdout: '', stderr: '' };
  };
  return { run, lines };
}

describe('createProxier', () => {
  test('each mode gets its own proxier, for the family asked', () => {
    const { run } = recordingRunner();
    for (const mode of ['iptables', 'nftables', 'ipvs'] as const) {
      const config = parseAgentFlags(['--mode', mode], 'node-a')!;
      const proxier = createProxier(config, 'IPv6', run, 'default');
      assert.equal(proxier.mode, mode);
      assert.equal(proxier.family, 'IPv6');
    }
  });

  test('ipvs mode: --ipvs-scheduler is the default of Services without the annotation, and an unsupported annotation reaches onWarning', async () => {
    const inputs: string[] = [];
    const run: CommandRunner = async (command, args, input) => {
      if (command === 'ipvsadm' && args[0] === '--restore') inputs.push(input ?? '');
      return { code: 0, stdout: '', stderr: '' };
    };
    const warnings: string[] = [];
    const config = parseAgentFlags(['--mode', 'ipvs', '--ipvs-scheduler', 'lc'], 'node-a')!;
    const proxier = createProxier(config, 'IPv4', run, 'default', {
      onWarning: (_message, fields) => warnings.push(fields['service'] ?? ''),
    });
    const tracker = new ChangeTracker({ node: TEST_NODE });
    const plain = makeService('plain', { clusterIP: '10.96.0.10' });
    const odd = makeService('odd', { clusterIP: '10.96.0.11' });
    odd.metadata!.annotations = { [ANNOTATION_IPVS_SCHEDULER]: 'maglev' };
    for (const service of [plain, odd]) tracker.updateService(service);
    tracker.updateEndpointSlice(makeSlice('plain', [{ ip: '10.244.1.5' }]));
    tracker.updateEndpointSlice(makeSlice('odd', [{ ip: '10.244.1.6' }]));
    const all = { changedServices: 'all', existingObjects: new Set<string>() } as const;
    await proxier.apply(proxier.render(tracker.snapshot().desired.IPv4, TEST_NODE, all));
    assert.match(inputs.join('\n'), /^-A -t 10\.96\.0\.10:80 -s lc$/m);
    assert.match(inputs.join('\n'), /^-A -t 10\.96\.0\.11:80 -s lc$/m);
    assert.deepEqual(warnings, ['default/odd']);
  });

  test('--cleanup in ipvs mode lists IPVS and removes the IPVS chains of both families, and touches no nftables table', async () => {
    const { run, lines } = recordingRunner();
    await cleanupRules(parseAgentFlags(['--mode', 'ipvs', '--cleanup'], 'node-a')!, run);
    assert.ok(lines.includes('ipvsadm -Ln'), lines.join('\n'));
    assert.ok(lines.includes('iptables-restore -w --noflush'));
    assert.ok(lines.includes('ip6tables-restore -w --noflush'));
    assert.ok(!lines.some((line) => line.startsWith('nft ')));
  });
});
