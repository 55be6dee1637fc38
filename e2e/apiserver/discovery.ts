/**
 * Discovery documents in their legacy (unaggregated) forms: APIVersions at /api, APIGroupList at
 * /apis, APIGroup at /apis/<group> and APIResourceList at each group/version. kubectl asks for the
 * aggregated form first and falls back to these when the response is plain application/json.
 */

import { apiVersionOf, type ResourceType } from './resources.ts';

const SUBRESOURCE_VERBS = ['get', 'patch', 'update'];

/** The body of GET /api. */
export function apiVersionsDocument(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupVersions(resources: readonly ResourceType[], group: string): string[] {
  const versions: string[] = [];
  for (const r of resources) if (r.group === group && !versions.includes(r.version)) versions.push(r.version);
  return versions;
}

function groupDocument(resources: readonly ResourceType[], group: string): object {
  const versions = groupVersions(resources, group).map((version) => ({
    groupVersion: `${group}/${version}`,
    version,
  }));
  return { name: group, versions, preferredVersion: versions[0] };
}

/** The body of GET /apis: every named group, in first-served order. */
export function apiGroupListDocument(resources: readonly ResourceType[]): object {
  const groups: string[] = [];
  for (const r of resources) if (r.group !== '' && !groups.includes(r.group)) groups.push(r.group);
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => groupDocument(resources, g)) };
}

/** The body of GET /apis/<group>, or undefined when the group is not served. */
export function apiGroupDocument(resources: readonly ResourceType[], group: string): object | undefined {
  if (!resources.some((r) => r.group === group)) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDocument(resources, group) };
}

/** The body of GET /api/v1 or /apis/<group>/<version>, or undefined when not served. */
export function apiResourceListDocument(
  resources: readonly ResourceType[],
  group: string,
  version: string,
): object | undefined {
  const served = resources.filter((r) => r.group === group && r.version === version);
  if (served.length === 0) return undefined;
  const entries: object[] = [];
  for (const r of served) {
    const entry: Record<string, unknown> = {
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
    };
    if (r.shortNames.length > 0) entry.shortNames = r.shortNames;
    if (r.categories.length > 0) entry.categories = r.categories;
    entries.push(entry);
    if (r.group === '' && r.plural === 'pods') {
      entries.push({
        name: 'pods/binding',
        singularName: '',
        namespaced: true,
        kind: 'Binding',
        verbs: ['create'],
      });
    }
    if (r.status) {
      entries.push({
        name: `${r.plural}/status`,
        singularName: '',
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: SUBRESOURCE_VERBS,
      });
    }
    if (r.scale) {
      entries.push({
        name: `${r.plural}/scale`,
        singularName: '',
        namespaced: r.namespaced,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: SUBRESOURCE_VERBS,
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf({ group, version }),
    resources: entries,
  };
}
