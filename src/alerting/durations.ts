const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds of a duration written like Prometheus: `0s`, `500ms`, `30s`, `5m`, `1h`, `7d`. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) throw new TypeError(`"${text}" is not a duration (e.g. 0s, 30s, 5m, 1h, 7d)`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] as string] as number));
}

/** Whether `text` is a duration {@link parseDuration} accepts. */
export function isDuration(text: string): boolean {
  return DURATION.test(text.trim());
}

/** A duration in the largest whole unit (`90000` → `90s`, `3600000` → `1h`). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
