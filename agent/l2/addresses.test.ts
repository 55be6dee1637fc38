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

/** The MAC of `lan0` in `namespace`. */
async function lanMac(namespace: string): Promise<string> {
  const links = JSON.parse(await ip(['-n', namespace, '-j', 'link', 'show', 'dev', 'lan0'])) as {
    address: string;
  }[];
  return links[0]?.address ?? '';
}

/** The client's neighbour entry for `address`: its MAC, or undefined when there is none. */
async function neighbourMac(namespace: string, address: string): Promise<string | undefined> {
  const entries = JSON.parse(await ip(['-n', namespace, '-j', '-6', 'neigh', 'show', 'dev', 'lan0'])) as {
    dst: string;
    lladdr?: string;
  }[];
  return entries.find((entry) => entry.dst === address)?.lladdr;
}

/**
 * Two node namespaces and a client on one bridge, IPv6 only from the ULA fd00:198:18::/64, which
 * never leaves these namespaces. Every namespace is removed, also when `body` fails.
 */
async function withIpv6Lan(
  body: (lan: { nodeA: string; nodeB: string; client: string }) => Promise<void>,
): Promise<void> {
  const prefix = `portico-l2t-${randomBytes(4).toString('hex')}`;
  const names = { bridge: `${prefix}-br`, nodeA: `${prefix}-a`, nodeB: `${prefix}-b`, client: `${prefix}-c` };
  const created: string[] = [];
  try {
    for (const namespace of Object.values(names)) {
      await ip(['netns', 'add', namespace]);
      created.push(namespace);
    }
    await ip(['-n', names.bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', names.bridge, 'link', 'set', 'br0', 'up']);
    for (const [port, namespace] of [
      ['pa', names.nodeA],
      ['pb', names.nodeB],
      ['pc', names.client],
    ] as const) {
      await ip([
        '-n',
        namespace,
        'link',
        'add',
        'lan0',
        'type',
        'veth',
        'peer',
        'name',
        port,
        'netns',
        names.bridge,
      ]);
      await ip(['-n', names.bridge, 'link', 'set', port, 'master', 'br0', 'up']);
      await ip(['-n', namespace, 'link', 'set', 'lan0', 'up']);
    }
    await ip(['-n', names.client, 'addr', 'add', 'fd00:198:18::fe/64', 'dev', 'lan0', 'nodad']);
    await body(names);
  } finally {
    for (const namespace of created) await ip(['netns', 'del', namespace]).catch(() => undefined);
  }
}

describe('IPv6 takeover in network namespaces', {
  skip: isRoot ? false : 'needs root and iproute2',
}, () => {
  test('the new holder’s unsolicited NA moves the client’s neighbour entry to its MAC at once', async () => {
    await withIpv6Lan(async ({ nodeA, nodeB, client }) => {
      const lbIp = 'fd00:198:18::10';
      const driverA = new IpAddressDriver({ interface: 'lan0', netns: nodeA, lifetimeSeconds: 30 });
      const driverB = new IpAddressDriver({ interface: 'lan0', netns: nodeB, lifetimeSeconds: 30 });
      await driverA.configure([lbIp]);
      const line = (await ip(['-n', nodeA, '-6', 'addr', 'show', 'dev', 'lan0']))
        .split('\n')
        .find((text) => text.includes(`${lbIp}/128`));
      assert.match(line ?? '', /scope global nodad/, 'added without duplicate address detection');
      assert.doesNotMatch(line ?? '', /tentative/, 'usable at once');
      // One datagram makes the client solicit the address, which node A answers at once.
      await execFileAsync('/usr/sbin/ip', [
        'netns',
        'exec',
        client,
        'bash',
        '-c',
        `echo x > /dev/udp/${lbIp}/9`,
      ]);
      const macA = await lanMac(nodeA);
      const macB = await lanMac(nodeB);
      const learned = Date.now();
      while ((await neighbourMac(client, lbIp)) !== macA) {
        assert.ok(Date.now() - learned < 3_000, 'the client learned node A as the holder');
        await sleep(50);
      }

      await driverA.remove([lbIp]);
      await driverB.configure([lbIp]);
      await driverB.announce(lbIp);
      const announced = Date.now();
      while ((await neighbourMac(client, lbIp)) !== macB) {
        assert.ok(Date.now() - announced < 1_000, 'the client moved to node B without soliciting');
        await sleep(20);
      }
      assert.deepEqual(await driverB.configured(), [lbIp]);
    });
  });
});
