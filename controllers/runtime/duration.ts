/**
 * Go-style durations (`500ms`, `15s`, `1m30s`, `2.5s`), the spelling every Kubernetes component
 * uses for its duration flags.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Milliseconds in a Go-style duration, rounded; undefined when `value` is empty or not made of
 * number+unit parts only. Callers phrase the error, because each flag allows a different range.
 */
export function goDurationMs(value: string): number | undefined {
  // Sticky, so every part must start where the previous one ended: no junk between parts.
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let offset = 0;
  while (offset < value.length) {
    part.lastIndex = offset;
    const match = part.exec(value);
    if (!match) break;
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    offset = part.lastIndex;
  }
  if (value === '' || offset !== value.length) return undefined;
  return Math.round(total);
}
