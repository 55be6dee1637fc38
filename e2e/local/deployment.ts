import type {
  V1Deployment,
  V1DeploymentCondition,
  V1DeploymentStatus,
  V1PodTemplateSpec,
  V1ReplicaSet,
} from '@kubernetes/client-node';

/** The label that ties a ReplicaSet and its pods to one version of a Deployment's template. */
export const podTemplateHashLabel = 'pod-template-hash';

/** Upstream's annotation recording which rollout revision a ReplicaSet is. */
export const revisionAnnotation = 'deployment.kubernetes.io/revision';

/** Serialises a value with object keys sorted, so equal templates hash and compare equal. */
export function stableStringify(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// Upstream encodes the hash with this alphabet (no vowels, no 0/1/3) so it never spells words.
const safeAlphabet = 'bcdfghjklmnpqrstvwxz2456789';

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function withoutHashLabel(template: V1PodTemplateSpec | undefined): V1PodTemplateSpec {
  const copy = structuredClone(template ?? {});
  if (copy.metadata?.labels !== undefined) {
    const { [podTemplateHashLabel]: _ignored, ...rest } = copy.metadata.labels;
    copy.metadata.labels = rest;
  }
  return copy;
}

/**
 * The `pod-template-hash` of a template: FNV-1a over its canonical form plus the collision count,
 * rendered in upstream's vowel-free alphabet. The hash label itself is left out, so a ReplicaSet's
 * template hashes to the value it carries.
 */
export function computePodTemplateHash(template: V1PodTemplateSpec | undefined, collisionCount = 0): string {
  const text =
    stableStringify(withoutHashLabel(template)) + (collisionCount > 0 ? String(collisionCount) : '');
  return [...String(fnv1a32(text))]
    .map((digit) => safeAlphabet[digit.charCodeAt(0) % safeAlphabet.length])
    .join('');
}

/** Whether two templates are the same version, ignoring the hash label. */
export function templatesEqual(a: V1PodTemplateSpec | undefined, b: V1PodTemplateSpec | undefined): boolean {
  return stableStringify(withoutHashLabel(a)) === stableStringify(withoutHashLabel(b));
}

/**
 * Resolves maxSurge/maxUnavailable against `replicas`: integers as they are, percentages of the
 * replica count, rounded up for surge and down for unavailability as upstream does.
 */
export function resolveIntOrPercent(
  value: number | string | undefined,
  replicas: number,
  roundUp: boolean,
  field: string,
  defaultValue: string,
): number {
  const raw = value ?? defaultValue;
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw) || raw < 0) {
      throw new Error(`${field}: Invalid value: ${raw}: must be greater than or equal to 0`);
    }
    return raw;
  }
  const match = /^(\d+)%$/.exec(raw);
  if (match === null) {
    throw new Error(
      `${field}: Invalid value: "${raw}": a valid percent string must be a numeric string followed by an ending '%'`,
    );
  }
  const scaled = (Number(match[1]) * replicas) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/** A change of one existing ReplicaSet's `spec.replicas`. */
export interface ReplicaSetScale {
  readonly name: string;
  readonly replicas: number;
}

/** What one Deployment sync should write. */
export interface DeploymentPlan {
  /** A ReplicaSet to create for the current template, if none exists yet. */
  readonly createReplicaSet?: V1ReplicaSet;
  /** Replica counts to change on existing ReplicaSets. */
  readonly scale: ReplicaSetScale[];
  /** The Deployment status computed from the ReplicaSets as they are now. */
  readonly status: V1DeploymentStatus;
}

function replicasOf(replicaSet: V1ReplicaSet): number {
  return replicaSet.spec?.replicas ?? 0;
}

function availableOf(replicaSet: V1ReplicaSet): number {
  return replicaSet.status?.availableReplicas ?? 0;
}

function revisionOf(replicaSet: V1ReplicaSet): number {
  const revision = Number(replicaSet.metadata?.annotations?.[revisionAnnotation] ?? 0);
  return Number.isFinite(revision) ? revision : 0;
}

function creationMs(replicaSet: V1ReplicaSet): number {
  const value = replicaSet.metadata?.creationTimestamp;
  return value === undefined ? 0 : new Date(value).getTime();
}

/** The ReplicaSet a Deployment owns for its current template, as upstream names and labels it. */
export function newReplicaSetFor(deployment: V1Deployment, replicas: number, revision: number): V1ReplicaSet {
  const template = deployment.spec?.template;
  const hash = computePodTemplateHash(template, deployment.status?.collisionCount ?? 0);
  const name = `${deployment.metadata?.name ?? ''}-${hash}`;
  const templateLabels = { ...(template?.metadata?.labels ?? {}), [podTemplateHashLabel]: hash };
  const selector = structuredClone(deployment.spec?.selector ?? {});
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: deployment.metadata?.namespace ?? 'default',
      labels: templateLabels,
      annotations: { [revisionAnnotation]: String(revision) },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: deployment.metadata?.name ?? '',
          uid: deployment.metadata?.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      minReadySeconds: deployment.spec?.minReadySeconds ?? 0,
      selector,
      template: {
        ...structuredClone(template ?? {}),
        metadata: { ...structuredClone(template?.metadata ?? {}), labels: templateLabels },
      },
    },
  };
}

/**
 * Plans one Deployment sync over the ReplicaSets it owns.
 *
 * - With no ReplicaSet for the current template, one is created (revision = highest + 1).
 * - RollingUpdate follows upstream's two moves: scale the new ReplicaSet up to at most
 *   `replicas + maxSurge` pods in total, and scale old ones down (oldest first) while keeping at
 *   least `replicas - maxUnavailable` available, removing old unavailable replicas first. With
 *   both resolved to 0, maxUnavailable becomes 1 so the rollout can progress.
 * - Recreate scales every old ReplicaSet to 0 and brings up the new one once none has replicas left.
 * - When no old ReplicaSet has replicas, the new one is simply set to `spec.replicas` (scaling).
 *
 * Each sync moves one step; the ReplicaSet status changes it causes trigger the next.
 */
export function planDeployment(
  deployment: V1Deployment,
  ownedReplicaSets: readonly V1ReplicaSet[],
  nowMs: number,
): DeploymentPlan {
  const replicas = deployment.spec?.replicas ?? 1;
  const template = deployment.spec?.template;
  const existingNew = ownedReplicaSets.find((rs) => templatesEqual(rs.spec?.template, template));
  const old = ownedReplicaSets.filter((rs) => rs !== existingNew);
  const oldActive = old.filter((rs) => replicasOf(rs) > 0);
  const scale: ReplicaSetScale[] = [];
  const isRecreate = deployment.spec?.strategy?.type === 'Recreate';
  const maxSurge = isRecreate
    ? 0
    : resolveIntOrPercent(
        deployment.spec?.strategy?.rollingUpdate?.maxSurge,
        replicas,
        true,
        'spec.strategy.rollingUpdate.maxSurge',
        '25%',
      );
  let maxUnavailable = isRecreate
    ? replicas
    : resolveIntOrPercent(
        deployment.spec?.strategy?.rollingUpdate?.maxUnavailable,
        replicas,
        false,
        'spec.strategy.rollingUpdate.maxUnavailable',
        '25%',
      );
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;

  const currentNewReplicas = existingNew === undefined ? 0 : replicasOf(existingNew);
  let targetNewReplicas = currentNewReplicas;
  if (oldActive.length === 0) {
    targetNewReplicas = replicas;
  } else if (isRecreate) {
    for (const rs of oldActive) scale.push({ name: rs.metadata?.name ?? '', replicas: 0 });
  } else {
    const totalPods = ownedReplicaSets.reduce((sum, rs) => sum + replicasOf(rs), 0);
    const maxTotal = replicas + maxSurge;
    if (totalPods < maxTotal) {
      targetNewReplicas = Math.min(currentNewReplicas + (maxTotal - totalPods), replicas);
    }
    scale.push(...planOldScaleDown(oldActive, existingNew, replicas, maxUnavailable));
  }

  let createReplicaSet: V1ReplicaSet | undefined;
  if (existingNew === undefined) {
    const revision = ownedReplicaSets.reduce((max, rs) => Math.max(max, revisionOf(rs)), 0) + 1;
    createReplicaSet = newReplicaSetFor(deployment, targetNewReplicas, revision);
  } else if (targetNewReplicas !== currentNewReplicas) {
    scale.unshift({ name: existingNew.metadata?.name ?? '', replicas: targetNewReplicas });
  }

  return {
    ...(createReplicaSet === undefined ? {} : { createReplicaSet }),
    scale,
    status: deploymentStatus(deployment, ownedReplicaSets, existingNew, nowMs),
  };
}

function planOldScaleDown(
  oldActive: readonly V1ReplicaSet[],
  newReplicaSet: V1ReplicaSet | undefined,
  replicas: number,
  maxUnavailable: number,
): ReplicaSetScale[] {
  const allPods =
    oldActive.reduce((sum, rs) => sum + replicasOf(rs), 0) + (newReplicaSet ? replicasOf(newReplicaSet) : 0);
  const minAvailable = replicas - maxUnavailable;
  const newUnavailable = newReplicaSet
    ? Math.max(0, replicasOf(newReplicaSet) - availableOf(newReplicaSet))
    : 0;
  let budget = allPods - minAvailable - newUnavailable;
  if (budget <= 0) return [];
  const targets = new Map<string, number>(oldActive.map((rs) => [rs.metadata?.name ?? '', replicasOf(rs)]));
  const oldestFirst = [...oldActive].sort((a, b) => creationMs(a) - creationMs(b));
  // Unavailable old replicas cost no availability, so they go first (upstream cleanupUnhealthyReplicas).
  for (const rs of oldestFirst) {
    if (budget <= 0) break;
    const name = rs.metadata?.name ?? '';
    const unhealthy = Math.max(0, replicasOf(rs) - availableOf(rs));
    const cut = Math.min(unhealthy, budget);
    targets.set(name, (targets.get(name) ?? 0) - cut);
    budget -= cut;
  }
  const available =
    oldActive.reduce(
      (sum, rs) => sum + Math.min(availableOf(rs), targets.get(rs.metadata?.name ?? '') ?? 0),
      0,
    ) + (newReplicaSet ? availableOf(newReplicaSet) : 0);
  // Upstream bounds this second move by availability alone, not by what the first move used.
  let availableBudget = available - minAvailable;
  for (const rs of oldestFirst) {
    if (availableBudget <= 0) break;
    const name = rs.metadata?.name ?? '';
    const cut = Math.min(targets.get(name) ?? 0, availableBudget);
    targets.set(name, (targets.get(name) ?? 0) - cut);
    availableBudget -= cut;
  }
  return oldActive
    .map((rs) => ({ name: rs.metadata?.name ?? '', replicas: targets.get(rs.metadata?.name ?? '') ?? 0 }))
    .filter((change, i) => change.replicas !== replicasOf(oldActive[i] as V1ReplicaSet));
}

function deploymentStatus(
  deployment: V1Deployment,
  ownedReplicaSets: readonly V1ReplicaSet[],
  newReplicaSet: V1ReplicaSet | undefined,
  nowMs: number,
): V1DeploymentStatus {
  const sum = (pick: (rs: V1ReplicaSet) => number | undefined) =>
    ownedReplicaSets.reduce((total, rs) => total + (pick(rs) ?? 0), 0);
  const replicas = deployment.spec?.replicas ?? 1;
  const availableReplicas = sum((rs) => rs.status?.availableReplicas);
  const statusReplicas = sum((rs) => rs.status?.replicas);
  const desiredPods = sum((rs) => rs.spec?.replicas);
  const maxUnavailable =
    deployment.spec?.strategy?.type === 'Recreate'
      ? 0
      : resolveIntOrPercent(
          deployment.spec?.strategy?.rollingUpdate?.maxUnavailable,
          replicas,
          false,
          'spec.strategy.rollingUpdate.maxUnavailable',
          '25%',
        );
  const isAvailable = availableReplicas >= replicas - maxUnavailable;
  const previous = deployment.status?.conditions?.find((c) => c.type === 'Available');
  const status = isAvailable ? 'True' : 'False';
  const available: V1DeploymentCondition = {
    type: 'Available',
    status,
    reason: isAvailable ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
    message: isAvailable
      ? 'Deployment has minimum availability.'
      : 'Deployment does not have minimum availability.',
    lastUpdateTime:
      previous?.status === status && previous.lastUpdateTime ? previous.lastUpdateTime : new Date(nowMs),
    lastTransitionTime:
      previous?.status === status && previous.lastTransitionTime
        ? previous.lastTransitionTime
        : new Date(nowMs),
  };
  return {
    ...(deployment.metadata?.generation === undefined
      ? {}
      : { observedGeneration: deployment.metadata.generation }),
    replicas: statusReplicas,
    updatedReplicas: newReplicaSet?.status?.replicas ?? 0,
    readyReplicas: sum((rs) => rs.status?.readyReplicas),
    availableReplicas,
    unavailableReplicas: Math.max(0, desiredPods - availableReplicas),
    conditions: [available],
    ...(deployment.status?.collisionCount === undefined
      ? {}
      : { collisionCount: deployment.status.collisionCount }),
  };
}
