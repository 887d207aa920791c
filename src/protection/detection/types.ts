/** The attack classes the detector knows. */
export type AttackClass =
  | 'sqli'
  | 'xss'
  | 'cmdi'
  | 'path_traversal'
  | 'ssrf'
  | 'nosqli'
  | 'prototype_pollution'
  | 'crlf'
  | 'scanner';

/** One suspected attack in one place of a request. */
export interface Finding {
  class: AttackClass;
  /** Confidence 0..100; a finding is reported when it reaches the class threshold. */
  score: number;
  /** Where it was found: `query.q`, `body.filter.name`, `body.items[2]`, `header.user-agent`, `cookie.session`, `path`. */
  location: string;
  /** The offending part, at most about 60 characters, with its middle masked. */
  fragment: string;
}

/** The parts of a request the detector inspects. */
export interface RequestParts {
  method: string;
  /** Raw path of the URL, without the query string. */
  path: string;
  /** Parsed query (values string | string[], or nested objects from a `qs`-style parser). */
  query: Record<string, unknown>;
  /** Node's lower-cased headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed cookies; when absent the `cookie` header is split here. */
  cookies?: Record<string, string>;
  /** Parsed JSON (any depth) or form body, or undefined. */
  body?: unknown;
}

/** Options of `createDetector`. */
export interface DetectorOptions {
  /** Classes to look for; all on by default, `{ scanner: false }` turns one off. */
  classes?: Partial<Record<AttackClass, boolean>>;
  /** Locations to skip: `body.content`, `body.snippets[]` (every item), `body.html.*` (everything below). Default none. */
  exclude?: readonly string[];
  /** Stop after this many findings; default 10. */
  maxFindings?: number;
  /**
   * Nesting below which JSON is not walked; default 128. Keep it above the depth bodies may have
   * (protection.limits.maxJsonDepth refuses deeper ones), or a payload could hide beneath it.
   */
  maxDepth?: number;
  /**
   * How many short values (up to 128 characters) found clean are remembered, per place, so
   * that a value seen again (the same User-Agent, Origin, path) is not scored again; default
   * 1024, 0 turns it off. Scoring depends only on the value and its place, so a remembered
   * verdict is the one scoring would give; when the memory is full it starts over.
   */
  benignCache?: number;
}

/** A compiled detector; create it once and reuse it for every request. */
export interface Detector {
  /** Every finding in a request, strongest first within each location. */
  inspect(parts: RequestParts): Finding[];
  /** One value at a location (used by tests and the evaluation). */
  inspectValue(value: string, location: string): Finding[];
}

/** Every attack class, in reporting order. */
export const ATTACK_CLASSES: readonly AttackClass[] = [
  'sqli',
  'xss',
  'cmdi',
  'path_traversal',
  'ssrf',
  'nosqli',
  'prototype_pollution',
  'crlf',
  'scanner',
];
