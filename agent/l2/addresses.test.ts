import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { IpAddressDriver } from './addresses.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

async function ip(args: readonly string[]): Promise<string> {
  return (await execFileAsync('/usr/sbin/ip', [...args], { encoding: 'utf8' })).stdout;
}

/** A namespace with a veth pair, `lan0` carrying a node address: never the host's namespace. */
async function withNamespace(body: (namespace: string) => Promise<void>): Promise<void> {
  const namespace = `portico-l2t-${randomBytes(4).toString('hex')}`;
  await ip(['netns', 'add', namespace]);
  try {
    await ip(['-n', namespace, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1']);
    await ip(['-n', namespace, 'link', 'set', 'lan0', 'up']);
    await ip(['-n', namespace, 'link', 'set', 'lan1', 'up']);
    await ip(['-n', namespace, 'addr', 'add', '198.18.255.1/24', 'dev', 'lan0']);
    await body(namespace);
  } finally {
    await ip(['netns', 'del', namespace]);
  }
}

async function sysctl(namespace: string, key: string): Promise<string> {
  const { stdout } = await execFileAsync('/usr/sbin/ip', ['netns', 'exec', namespace, 'sysctl', '-n', key], {
    encoding: 'utf8',
  });
  return stdout.trim();
}

describe('IpAddressDriver in a network namespace', {
  skip: isRoot ? false : 'needs root and iproute2',
}, () => {
  test('adds host addresses with a lifetime, lists only those, removes them, and sets the ARP sysctls', async () => {
    await withNamespace(async (namespace) => {
      const driver = new IpAddressDriver({ interface: 'lan0', netns: namespace, lifetimeSeconds: 1 });
      await driver.prepare();
      assert.equal(await sysctl(namespace, 'net.ipv4.conf.lan0.arp_ignore'), '1');
      assert.equal(await sysctl(namespace, 'net.ipv4.conf.lan0.arp_announce'), '2');
      await driver.configure(['198.18.200.1', '198.18.200.2']);
      await driver.configure(['198.18.200.1']);
      assert.deepEqual((await driver.configured()).sort(), ['198.18.200.1', '198.18.200.2']);
      await driver.remove(['198.18.200.2', '198.18.200.3']);
      assert.deepEqual(await driver.configured(), ['198.18.200.1']);
      await driver.announce('198.18.200.1');
      assert.match(await ip(['-n', namespace, '-4', 'addr', 'show', 'dev', 'lan0']), /198\.18\.255\.1\/24/);
    });
  });

  test('an address nobody refreshes expires on its own, as after SIGKILL of the agent', async () => {
    await withNamespace(async (namespace) => {
      const driver = new IpAddressDriver({ interface: 'lan0', netns: namespace, lifetimeSeconds: 1 });
      await driver.configure(['198.18.200.7']);
      const addedAt = Date.now();
      while ((await driver.configured()).length > 0) {
        assert.ok(Date.now() - addedAt < 3_000, 'the kernel removes it within lifetime + 1 s rounding');
        await sleep(100);
      }
    });
  });
});
