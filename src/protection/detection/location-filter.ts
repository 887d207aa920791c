/** One level of the exclusion tree compiled from `DetectorOptions.exclude`. */
class ExclusionNode {
  readonly children = new Map<string, ExclusionNode>();
  readonly indexes = new Map<number, ExclusionNode>();
  anyIndex: ExclusionNode | undefined;
  anyChild: ExclusionNode | undefined;
  /** This location and everything below it is skipped. */
  excluded = false;
}

/** Result of `LocationFilter.step` when the location is excluded. */
export const EXCLUDED = 'excluded';

/** Where a walk stands in the exclusion tree: the nodes that still match, or none. */
export type FilterState = readonly ExclusionNode[] | undefined;

const INDEX_SEGMENT = /^\[(\d*)\]$/;

/**
 * Compiled `exclude` patterns: `body.content` (that field and below), `body.snippets[]` (every
 * item), `body.items[2]`, `body.html.*` (everything below `body.html`), `header.x-note`,
 * `query.q`, `cookie.*`. The walk carries its state down, so no location string is built to
 * decide whether to skip.
 */
export class LocationFilter {
  private readonly root = new ExclusionNode();

  constructor(patterns: readonly string[]) {
    for (const pattern of patterns) this.add(pattern);
  }

  /** The state at a top-level part (`query`, `body`, `header`, `cookie`, `path`). */
  start(part: string): FilterState | typeof EXCLUDED {
    return this.step([this.root], part);
  }

  /** The state one level down, at `segment` (a key or an array index). */
  step(state: FilterState, segment: string | number): FilterState | typeof EXCLUDED {
    if (state === undefined) return undefined;
    let next: ExclusionNode[] | undefined;
    for (const node of state) {
      const exact = typeof segment === 'number' ? node.indexes.get(segment) : node.children.get(segment);
      const candidates = [exact, typeof segment === 'number' ? node.anyIndex : undefined, node.anyChild];
      for (const candidate of candidates) {
        if (candidate === undefined) continue;
        if (candidate.excluded) return EXCLUDED;
        next ??= [];
        next.push(candidate);
      }
    }
    return next;
  }

  private add(pattern: string): void {
    const segments = splitPattern(pattern);
    if (segments.length === 0) throw new TypeError(`Invalid detection exclude pattern: "${pattern}"`);
    let node = this.root;
    for (const segment of segments) node = this.child(node, segment);
    node.excluded = true;
  }

  private child(node: ExclusionNode, segment: string): ExclusionNode {
    const index = INDEX_SEGMENT.exec(segment);
    if (segment === '*') {
      node.anyChild ??= new ExclusionNode();
      return node.anyChild;
    }
    if (index !== null && index[1] === '') {
      node.anyIndex ??= new ExclusionNode();
      return node.anyIndex;
    }
    const map = index !== null ? node.indexes : node.children;
    const key = index !== null ? Number(index[1]) : segment;
    let child = (map as Map<string | number, ExclusionNode>).get(key);
    if (child === undefined) {
      child = new ExclusionNode();
      (map as Map<string | number, ExclusionNode>).set(key, child);
    }
    return child;
  }
}

/** `body.items[2].name` → `body`, `items`, `[2]`, `name`; `header.X-Note` → `header`, `x-note`. */
function splitPattern(pattern: string): string[] {
  const segments: string[] = [];
  for (const dotted of pattern.trim().split('.')) {
    if (dotted === '') return [];
    const bracket = dotted.indexOf('[');
    const name = bracket < 0 ? dotted : dotted.slice(0, bracket);
    if (name !== '') segments.push(name);
    if (bracket >= 0) {
      const indexes = dotted.slice(bracket).match(/\[\d*\]/g) ?? [];
      if (indexes.join('') !== dotted.slice(bracket)) return [];
      segments.push(...indexes);
    }
  }
  if (segments[0] === 'header' && segments.length > 1) segments[1] = segments[1]!.toLowerCase();
  return segments;
}
