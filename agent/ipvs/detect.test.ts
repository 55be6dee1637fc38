import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { detectIpvsSupport, resolveProxyMode } from './detect.ts';

describe('IPVS detection on this machine (no IPVS module)', () => {
  test('real detection says IPVS is not supported and why', async () => {
    const support = await detectIpvsSupport();
    assert.equal(support.supported, false);
    assert.match(support.reason, /\/proc\/net\/ip_vs does not exist/);
  });

  test('--mode ipvs falls back to iptables with exactly one log line', async () => {
    const lines: string[] = [];
    const mode = await resolveProxyMode('ipvs', { noFallback: false, log: (line) => lines.push(line) });
    assert.equal(mode, 'iptables');
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      /^IPVS is not supported by this kernel \(.*\); falling back to the iptables proxy mode$/,
    );
  });

  test('--mode ipvs with --no-fallback fails with a clear error and logs nothing', async () => {
    const lines: string[] = [];
    await assert.rejects(
      resolveProxyMode('ipvs', { noFallback: true, log: (line) => lines.push(line) }),
      (error: Error) => {
        assert.match(error.message, /^--mode: Invalid value: "ipvs": the kernel does not support IPVS/);
        assert.match(error.message, /--no-fallback/);
        return true;
      },
    );
    assert.deepEqual(lines, []);
  });

  test('other modes pass through without detection', async () => {
    const detect = () => Promise.reject(new Error('must not detect'));
    for (const mode of ['iptables', 'nftables'] as const)
      assert.equal(await resolveProxyMode(mode, { noFallback: true, log: () => {}, detect }), mode);
  });
});

describe('IPVS detection sources', () => {
  test('a present /proc/net/ip_vs or a built-in ip_vs means supported; ipvs is then kept', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'portico-ipvs-'));
    try {
      const proc = join(directory, 'ip_vs');
      await writeFile(proc, 'IP Virtual Server version 1.2.1\n');
      assert.equal((await detectIpvsSupport({ procIpVs: proc })).supported, true);
      const builtin = join(directory, 'modules.builtin');
      await writeFile(builtin, 'kernel/net/netfilter/ipvs/ip_vs.ko\n');
      const missing = join(directory, 'missing');
      const failingProbe = async () => ({ code: 1, stdout: '', stderr: 'not found' });
      assert.equal(
        (await detectIpvsSupport({ procIpVs: missing, modulesBuiltin: builtin, run: failingProbe }))
          .supported,
        true,
      );
      const supported = () => detectIpvsSupport({ procIpVs: proc });
      assert.equal(
        await resolveProxyMode('ipvs', { noFallback: true, log: () => {}, detect: supported }),
        'ipvs',
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  test('a successful modprobe dry run means supported', async () => {
    const support = await detectIpvsSupport({
      procIpVs: '/nonexistent/ip_vs',
      modulesBuiltin: '/nonexistent/modules.builtin',
      run: async () => ({ code: 0, stdout: 'insmod /lib/modules/x/ip_vs.ko\n', stderr: '' }),
    });
    assert.deepEqual(support, { supported: true, reason: 'modprobe -n ip_vs found a loadable module' });
  });
});
