import { maskFragment } from './fragment.ts';
import { isInspectedHeader } from './header-selection.ts';
import { EXCLUDED, type FilterState, type LocationFilter } from './location-filter.ts';
import { LocationPath } from './location-path.ts';
import {
  type ClassDetector,
  IN_BODY,
  IN_COOKIE,
  IN_HEADER,
  IN_PATH,
  IN_QUERY,
  IN_USER_AGENT,
  IS_KEY,
  Subject,
} from './subject.ts';
import type { Finding, RequestParts } from './types.ts';

/**
 * Walks one request (or one value) and runs the enabled detectors on every inspected string.
 * One instance per detector: `inspect` is synchronous, so the walk state, the subject and the
 * location stack are reused from request to request.
 */
export class RequestInspection {
  private readonly subject = new Subject();
  private readonly location = new LocationPath();
  private findings: Finding[] = [];
  /** Short values found clean, by place (`where` bits); see `DetectorOptions.benignCache`. */
  private readonly benign = new Map<number, Set<string>>();
  private benignCount = 0;

  constructor(
    private readonly detectors: readonly ClassDetector[],
    private readonly thresholds: readonly number[],
    private readonly filter: LocationFilter | undefined,
    private readonly maxFindings: number,
    /** Nesting below which structures are not walked: at least the JSON body limit's depth. */
    private readonly maxDepth: number,
    /** Clean short values remembered (0: none). */
    private readonly benignCapacity: number,
  ) {}

  run(parts: RequestParts): Finding[] {
    this.findings = [];
    if (typeof parts.path === 'string' && this.enter('path') !== EXCLUDED) this.inspect(parts.path, IN_PATH);
    if (parts.query !== null && typeof parts.query === 'object')
      this.walkPart('query', parts.query, IN_QUERY);
    this.walkHeaders(parts.headers, parts.cookies === undefined);
    if (parts.cookies !== undefined) this.walkPart('cookie', parts.cookies, IN_COOKIE);
    if (parts.body !== undefined && parts.body !== null) this.walkPart('body', parts.body, IN_BODY);
    return this.findings;
  }

  /** Inspects one value at a location given as a string (`query.q`, `header.user-agent`). */
  runValue(value: string, location: string): Finding[] {
    this.findings = [];
    this.location.reset(location);
    this.inspect(value, placeOf(location));
    return this.findings;
  }

  private full(): boolean {
    return this.findings.length >= this.maxFindings;
  }

  private enter(part: string): FilterState | typeof EXCLUDED {
    this.location.reset(part);
    return this.filter === undefined ? undefined : this.filter.start(part);
  }

  private walkPart(part: string, value: unknown, where: number): void {
    const state = this.enter(part);
    if (state !== EXCLUDED) this.walk(value, where, state, 0);
  }

  private walk(value: unknown, where: number, state: FilterState, depth: number): void {
    if (this.full()) return;
    if (typeof value === 'string') {
      this.inspect(value, where);
      return;
    }
    if (value === null || typeof value !== 'object' || depth >= this.maxDepth) return;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length && !this.full(); i += 1) {
        const next = this.filter === undefined ? undefined : this.filter.step(state, i);
        if (next === EXCLUDED) continue;
        this.location.push(i);
        this.walk(value[i], where, next, depth + 1);
        this.location.pop();
      }
      return;
    }
    const record = value as Record<string, unknown>;
    for (const key in record) {
      if (this.full()) return;
      if (!Object.hasOwn(record, key)) continue;
      const next = this.filter === undefined ? undefined : this.filter.step(state, key);
      if (next === EXCLUDED) continue;
      this.location.push(key);
      // Only `prototype` needs the key above it (`constructor.prototype`).
      this.inspect(key, where | IS_KEY, key === 'prototype' ? this.location.parentKey() : '');
      this.walk(record[key], where, next, depth + 1);
      this.location.pop();
    }
  }

  private walkHeaders(headers: RequestParts['headers'], splitCookies: boolean): void {
    if (headers === null || typeof headers !== 'object') return;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || this.full()) continue;
      if (name === 'cookie') {
        if (splitCookies) this.walkCookieHeader(value);
        continue;
      }
      if (!isInspectedHeader(name)) continue;
      const state = this.enter('header');
      const next = this.filter === undefined ? undefined : this.filter.step(state as FilterState, name);
      if (state === EXCLUDED || next === EXCLUDED) continue;
      this.location.push(name);
      this.walk(value, name === 'user-agent' ? IN_USER_AGENT : IN_HEADER, next, 0);
    }
  }

  private walkCookieHeader(header: string | string[]): void {
    const cookies: Record<string, string> = {};
    for (const line of Array.isArray(header) ? header : [header]) {
      for (const pair of line.split(';')) {
        const equals = pair.indexOf('=');
        if (equals < 0) continue;
        cookies[pair.slice(0, equals).trim()] = pair.slice(equals + 1).trim();
      }
    }
    this.walkPart('cookie', cookies, IN_COOKIE);
  }

  private inspect(value: string, where: number, parentKey = ''): void {
    if (value.length === 0) return;
    // A verdict depends on the value and its place only (a parent key matters only under
    // `prototype`, which is never remembered).
    const remember = value.length <= MAX_REMEMBERED_LENGTH && parentKey === '' && this.benignCapacity > 0;
    let known: Set<string> | undefined;
    if (remember) {
      known = this.benign.get(where);
      if (known?.has(value)) return;
    }
    const subject = this.subject;
    subject.load(where & (IN_HEADER | IN_USER_AGENT) ? headerText(value) : value, where, parentKey);
    const first = this.findings.length;
    const plain = subject.flags === 0 && subject.rawFlags === 0;
    for (let i = 0; i < this.detectors.length; i += 1) {
      const detector = this.detectors[i]!;
      if ((detector.scope & where) !== where) continue;
      if (plain && (detector.inspectsPlainWord === undefined || !detector.inspectsPlainWord(value))) continue;
      const score = detector.score(subject);
      if (score < this.thresholds[i]!) continue;
      this.findings.push({
        class: detector.attackClass,
        score,
        location: this.location.format(),
        fragment: maskFragment(subject.text, subject.hitStart, subject.hitEnd),
      });
    }
    if (remember && this.findings.length === first) this.rememberBenign(value, where, known);
    if (this.findings.length - first > 1) sortFrom(this.findings, first);
    if (this.findings.length > this.maxFindings) this.findings.length = this.maxFindings;
  }

  private rememberBenign(value: string, where: number, known: Set<string> | undefined): void {
    if (this.benignCount >= this.benignCapacity) {
      // Full (many distinct values): start over rather than track ages on every request.
      this.benign.clear();
      this.benignCount = 0;
      known = undefined;
    }
    if (known === undefined) {
      known = new Set();
      this.benign.set(where, known);
    }
    known.add(value);
    this.benignCount += 1;
  }
}

/** Sorts `findings[first…]` strongest first (they share one location). */
function sortFrom(findings: Finding[], first: number): void {
  const tail = findings.splice(first).sort((a, b) => b.score - a.score);
  findings.push(...tail);
}

/** Longest value whose clean verdict is remembered. */
const MAX_REMEMBERED_LENGTH = 128;

const HIGH_LATIN1 = /[\u0080-\u00ff]/;
const BEYOND_LATIN1 = /[\u0100-\uffff]/;

/**
 * Node reads header bytes as Latin-1, so UTF-8 sent by a client (`＜script＞`) arrives as
 * mojibake; it is read back as UTF-8 when it is valid UTF-8.
 */
function headerText(value: string): string {
  if (!HIGH_LATIN1.test(value) || BEYOND_LATIN1.test(value)) return value;
  const utf8 = Buffer.from(value, 'latin1').toString('utf8');
  return utf8.includes('\ufffd') ? value : utf8;
}

function placeOf(location: string): number {
  if (location === 'path') return IN_PATH;
  if (location === 'header.user-agent') return IN_USER_AGENT;
  if (location.startsWith('header.')) return IN_HEADER;
  if (location.startsWith('cookie.')) return IN_COOKIE;
  if (location.startsWith('query.') || location === 'query') return IN_QUERY;
  return IN_BODY;
}
