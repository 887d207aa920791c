/** Longest key shown in a location; longer keys (often payloads themselves) are cut. */
const MAX_KEY_IN_LOCATION = 40;

/**
 * The segments from the request part (`query`, `body`, …) down to the value being inspected,
 * kept as a stack during the walk; the location string is built only for a finding.
 */
export class LocationPath {
  part = '';
  private readonly segments: (string | number)[] = [];

  reset(part: string): void {
    this.part = part;
    this.segments.length = 0;
  }

  push(segment: string | number): void {
    this.segments.push(segment);
  }

  pop(): void {
    this.segments.pop();
  }

  get depth(): number {
    return this.segments.length;
  }

  /** The nearest key above the current one (`constructor` for `constructor.prototype`). */
  parentKey(): string {
    for (let i = this.segments.length - 2; i >= 0; i -= 1) {
      const segment = this.segments[i];
      if (typeof segment === 'string') return segment;
    }
    return '';
  }

  /** `body.items[2].name`, `header.user-agent`, `path`. */
  format(): string {
    let location = this.part;
    for (const segment of this.segments) {
      location += typeof segment === 'number' ? `[${segment}]` : `.${displayKey(segment)}`;
    }
    return location;
  }
}

/** The key as shown in a location: cut when long, control characters (log forging) as `?`. */
function displayKey(key: string): string {
  const shown = key.length > MAX_KEY_IN_LOCATION ? `${key.slice(0, MAX_KEY_IN_LOCATION)}…` : key;
  let safe = '';
  for (const char of shown) {
    const code = char.charCodeAt(0);
    safe += code < 32 || code === 127 || code === 0x2028 || code === 0x2029 ? '?' : char;
  }
  return safe;
}
