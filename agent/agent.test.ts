import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanupRules, createProxier } from './agent.ts';
import { parseAgentFlags } from './flags.ts';
import type { CommandRunner } from './iptables/proxier.ts';

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

  test('--cleanup in ipvs mode lists IPVS and removes the IPVS chains of both families, and touches no nftables table', async () => {
    const { run, lines } = recordingRunner();
    await cleanupRules(parseAgentFlags(['--mode', 'ipvs', '--cleanup'], 'node-a')!, run);
    assert.ok(lines.includes('ipvsadm -Ln'), lines.join('\n'));
    assert.ok(lines.includes('iptables-restore -w --noflush'));
    assert.ok(lines.includes('ip6tables-restore -w --noflush'));
    assert.ok(!lines.some((line) => line.startsWith('nft ')));
  });
});
