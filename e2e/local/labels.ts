import type { V1LabelSelector } from '@kubernetes/client-node';

/**
 * Whether `labels` satisfy a label selector (matchLabels and matchExpressions with In, NotIn,
 * Exists, DoesNotExist). An empty selector matches everything, as for ReplicaSets; a missing one
 * matches nothing, so a workload without a selector never adopts stray pods.
 */
export function selectorMatches(
  selector: V1LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (selector === undefined) return false;
  const present = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (present[key] !== value) return false;
  }
  for (const expression of selector.matchExpressions ?? []) {
    const value = present[expression.key];
    const values = expression.values ?? [];
    switch (expression.operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
      default:
        throw new Error(
          `selector.matchExpressions.operator: Unsupported value: "${expression.operator}": supported values: "In", "NotIn", "Exists", "DoesNotExist"`,
        );
    }
  }
  return true;
}
