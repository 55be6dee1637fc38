/**
 * The resource types served right now: the built-ins plus those of established CustomResourceDefinitions.
 * Discovery, OpenAPI, tables and the router all ask the catalog, so a CRD's resources appear and
 * disappear everywhere at once.
 */

import type { JsonObject } from './patch.ts';
import { isObject } from './patch.ts';
import { BUILTIN_RESOURCES, type PrinterColumn, type ResourceType } from './resources.ts';

/** The store key of a resource type: `<group>/<plural>` (one served version per resource). */
export function resourceKeyOf(r: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${r.group}/${r.plural}`;
}

const CRD_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/**
 * The resource types a CustomResourceDefinition serves: one per served version. The storage version
 * comes first, because the store keeps one version per resource and that is the one it holds.
 */
export function resourceTypesOfCrd(crd: JsonObject): ResourceType[] {
  const spec = crd.spec as {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: unknown; scale?: unknown };
      additionalPrinterColumns?: PrinterColumn[];
      schema?: { openAPIV3Schema?: unknown };
    }[];
  };
  const versions = [...spec.versions]
    .filter((v) => v.served)
    .sort((a, b) => Number(b.storage) - Number(a.storage));
  return versions.map((v) => ({
    group: spec.group,
    version: v.name,
    kind: spec.names.kind,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    namespaced: spec.scope === 'Namespaced',
    shortNames: spec.names.shortNames ?? [],
    categories: spec.names.categories ?? [],
    status: isObject(v.subresources) && v.subresources.status !== undefined,
    scale: isObject(v.subresources) && v.subresources.scale !== undefined,
    verbs: CRD_VERBS,
    hasSpec: true,
    custom: { printerColumns: v.additionalPrinterColumns ?? [], schema: v.schema?.openAPIV3Schema ?? {} },
  }));
}

/** The served resource types, looked up by URL parts. */
export class ResourceCatalog {
  private readonly custom = new Map<string, ResourceType[]>();
  /** Rebuilt when CRDs change; every request looks its resource up here. */
  private served: ResourceType[] = [...BUILTIN_RESOURCES];
  private byPath = new Map<string, ResourceType>();

  constructor() {
    this.rebuild();
  }

  /** Every served resource type, built-ins first, in discovery order. */
  all(): readonly ResourceType[] {
    return this.served;
  }

  /** The type served at `<group>/<version>/<plural>`, if any. */
  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.byPath.get(`${group}/${version}/${plural}`);
  }

  /** The type of a stored object's resource key (its storage version). */
  byKey(resourceKey: string): ResourceType | undefined {
    return this.all().find((r) => resourceKeyOf(r) === resourceKey);
  }

  /** The type of `apiVersion` + `kind`, as found in ownerReferences. */
  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.all().find(
      (r) => (r.group === '' ? r.version : `${r.group}/${r.version}`) === apiVersion && r.kind === kind,
    );
  }

  /** Whether a group/version is served at all (for discovery 404s). */
  servesGroupVersion(group: string, version: string): boolean {
    return this.all().some((r) => r.group === group && r.version === version);
  }

  /** Starts or updates serving a CRD's resources (keyed by CRD name). */
  setCustom(crdName: string, types: ResourceType[]): void {
    this.custom.set(crdName, types);
    this.rebuild();
  }

  /** Stops serving a CRD's resources. */
  removeCustom(crdName: string): ResourceType[] {
    const types = this.custom.get(crdName) ?? [];
    this.custom.delete(crdName);
    this.rebuild();
    return types;
  }

  private rebuild(): void {
    this.served = [...BUILTIN_RESOURCES, ...[...this.custom.values()].flat()];
    this.byPath = new Map(this.served.map((r) => [`${r.group}/${r.version}/${r.plural}`, r]));
  }
}
