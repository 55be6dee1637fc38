/**
 * The images cannot be built on these machines, so these tests check what a build would trip on:
 * every file the entrypoint loads is copied into the image, and every package it imports is a
 * production dependency (the image runs `npm ci --omit=dev`).
 */
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../tools/helm.ts';

interface Dockerfile {
  from: string[];
  copiedDirs: string[];
  entrypoint: string[];
  runLines: string[];
  user: string | undefined;
}

async function readDockerfile(name: string): Promise<Dockerfile> {
  const text = await readFile(join(REPO_ROOT, 'e2e', 'kind', 'images', name), 'utf8');
  // Join continuation lines so each instruction is one line.
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  const argsOf = (keyword: string) =>
    lines
      .filter((line) => line.startsWith(`${keyword} `))
      .map((line) => line.slice(keyword.length + 1).trim());
  const entrypoint = argsOf('ENTRYPOINT')[0];
  return {
    from: argsOf('FROM'),
    copiedDirs: argsOf('COPY')
      .map((args) => args.split(/\s+/))
      .filter(([source]) => source && !source.includes('.json'))
      .map(([source]) => source!),
    entrypoint: entrypoint ? (JSON.parse(entrypoint) as string[]) : [],
    runLines: argsOf('RUN'),
    user: argsOf('USER')[0],
  };
}

/** Every repository file reachable from `entry` through static and literal dynamic imports, and the packages named. */
async function importGraph(entry: string): Promise<{ files: Set<string>; packages: Set<string> }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [resolve(REPO_ROOT, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = await readFile(file, 'utf8');
    for (const match of source.matchAll(
      /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+'([^']+)'|import\('([^']+)'\)/g,
    )) {
      const specifier = match[1] ?? match[2]!;
      if (match[0].trimStart().startsWith('import type') || match[0].trimStart().startsWith('export type'))
        continue;
      if (specifier.startsWith('.')) {
        pending.push(resolve(dirname(file), specifier));
      } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        const parts = specifier.split('/');
        packages.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
      }
    }
  }
  return { files, packages };
}

describe('container images', () => {
  test('both images are node:24-slim running a .ts entrypoint with node', async () => {
    for (const name of ['Dockerfile.controller-manager', 'Dockerfile.agent']) {
      const dockerfile = await readDockerfile(name);
      assert.deepEqual(dockerfile.from, ['node:24-slim'], name);
      assert.equal(dockerfile.entrypoint[0], 'node', name);
      assert.match(dockerfile.entrypoint[1]!, /\.ts$/, name);
      assert.ok(
        dockerfile.runLines.some((line) => line.includes('npm ci --omit=dev')),
        `${name} must install production dependencies only`,
      );
    }
  });

  test('the controller-manager image runs as a non-root numeric user', async () => {
    const { user } = await readDockerfile('Dockerfile.controller-manager');
    assert.match(user ?? '', /^[1-9]\d*:[1-9]\d*$/);
  });

  test('the agent image installs the tools of every proxy mode', async () => {
    const { runLines } = await readDockerfile('Dockerfile.agent');
    const install = runLines.find((line) => line.includes('apt-get install')) ?? '';
    for (const tool of ['iptables', 'nftables', 'ipset', 'ipvsadm', 'conntrack']) {
      assert.match(install, new RegExp(`\\b${tool}\\b`), `the agent image lacks ${tool}`);
    }
  });

  test('everything the controller-manager loads is copied into its image, and needs only production dependencies', async () => {
    const dockerfile = await readDockerfile('Dockerfile.controller-manager');
    await access(join(REPO_ROOT, dockerfile.entrypoint[1]!));
    const { files, packages } = await importGraph(dockerfile.entrypoint[1]!);
    for (const file of files) {
      const topLevel = relative(REPO_ROOT, file).split('/')[0]!;
      assert.ok(
        dockerfile.copiedDirs.includes(topLevel),
        `${relative(REPO_ROOT, file)} is not copied into the image`,
      );
    }
    const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const name of packages) {
      assert.ok(
        name in manifest.dependencies,
        `${name} is imported at run time but is not a production dependency`,
      );
    }
  });

  test('the agent image copies the folders the agent and its shared code live in', async () => {
    const dockerfile = await readDockerfile('Dockerfile.agent');
    assert.match(dockerfile.entrypoint[1]!, /^agent\//);
    for (const dir of dockerfile.copiedDirs) {
      await access(join(REPO_ROOT, dir));
    }
    assert.ok(dockerfile.copiedDirs.includes('agent'));
  });
});
