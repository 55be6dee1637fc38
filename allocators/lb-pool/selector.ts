import type { V1LabelSelector } from '@kubernetes/client-node';

/**
 * Whether `labels` satisfy a metav1.LabelSelector, with upstream's semantics: an absent selector
 * matches everything, every matchLabels pair and every matchExpressions requirement must hold,
 * and an operator this code does not know matches nothing (failing closed keeps a pool from
 * serving Services its author meant to exclude).
 */
export function labelSelectorMatches(
  selector: V1LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, requirement.key);
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (!present || !values.includes(labels[requirement.key] ?? '')) return false;
        break;
      case 'NotIn':
        if (present && values.includes(labels[requirement.key] ?? '')) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
