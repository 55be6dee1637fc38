/**
 * Test helper for kernel checks (needs root): a network namespace of their own, so the rules they
 * load never touch the host's namespace, and removed again also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { type CommandRunner, commandRunner } from '../iptables/proxier.ts';

/** A network namespace that exists between the `before` and `after` hooks of the enclosing suite. */
export interface TestNetworkNamespace {
  /** `portico-test-<hex>`: random, so parallel test files never share one. */
  readonly name: string;
  /** Runs a command inside the namespace and reports its exit code and output. */
  readonly run: CommandRunner;
  /** Runs a command inside the namespace, fails the test unless it exits 0, and returns stdout. */
  check(command: string, args: string[], input?: string): Promise<string>;
}

/**
 * Registers hooks on the enclosing `describe` that create a fresh network namespace before its
 * tests and delete it after them (the `after` hook runs also when a test fails).
 */
export function useTestNetworkNamespace(): TestNetworkNamespace {
  const name = `portico-test-${randomBytes(4).toString('hex')}`;
  const run = commandRunner(name);
  before(() => {
    execFileSync('ip', ['netns', 'add', name]);
  });
  after(() => {
    execFileSync('ip', ['netns', 'del', name]);
  });
  return {
    name,
    run,
    async check(command, args, input) {
      const result = await run(command, args, input);
      assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    },
  };
}
