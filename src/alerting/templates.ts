/** What an annotation template may refer to. */
export interface TemplateData {
  value: number | null;
  threshold: number;
  labels: Readonly<Record<string, string>>;
  rule: string;
  series: string;
}

/** A `{{ … }}` placeholder; group 1 is the expression inside. */
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
/** A `$labels.name` expression; group 1 is the label name. */
export const LABEL = /^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Fills `{{ $value }}`, `{{ $threshold }}`, `{{ $labels.name }}`, `{{ $rule }}` and
 * `{{ $series }}` in an annotation. Nothing is evaluated: an unknown placeholder is left as
 * written, so a typo shows in the notification instead of vanishing.
 */
export function renderTemplate(template: string, data: TemplateData): string {
  return template.replace(PLACEHOLDER, (whole, expression: string) => {
    switch (expression) {
      case '$value':
        return formatAlertValue(data.value);
      case '$threshold':
        return formatAlertValue(data.threshold);
      case '$rule':
        return data.rule;
      case '$series':
        return data.series;
      default: {
        const label = LABEL.exec(expression);
        if (label) return data.labels[label[1] as string] ?? '';
        return whole;
      }
    }
  });
}

/** Placeholders of a template that {@link renderTemplate} does not know (checked when a rule is saved). */
export function unknownPlaceholders(template: string): string[] {
  const unknown: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) {
    const expression = match[1] as string;
    if (!['$value', '$threshold', '$rule', '$series'].includes(expression) && !LABEL.test(expression)) {
      unknown.push(match[0]);
    }
  }
  return unknown;
}

/** A value as annotation templates print it: integers whole, others to 4 significant digits. */
export function formatAlertValue(value: number | null): string {
  if (value === null || Number.isNaN(value)) return 'no data';
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(4)));
}
