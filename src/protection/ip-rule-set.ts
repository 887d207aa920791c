import { isIPv4 } from 'node:net';
import { type IpRange, ipv4Value, parseIp } from '../core/ip-address.ts';

/** What a rule does to the addresses it covers. */
export type IpAction = 'allow' | 'deny';

/** One allow or deny rule (from the config file, the API or an automatic ban). */
export interface IpRule {
  readonly id: string;
  readonly cidr: string;
  readonly range: IpRange;
  readonly action: IpAction;
  readonly reason: string;
  readonly source: 'config' | 'api' | 'ban';
  /** Epoch ms; null for a rule that does not expire. */
  readonly expiresAt: number | null;
}

interface Span<T> {
  start: T;
  end: T;
  rule: IpRule;
}

const IPV4_BASE = 0xffffn << 32n;
const IPV4_LAST = IPV4_BASE | 0xffffffffn;

/**
 * Ranges sorted by start, with the largest end seen so far at each index: a lookup is a binary
 * search for the last range starting at or before the address, then a walk back only while an
 * earlier range can still reach it (nested ranges), so it stays logarithmic for real rule lists.
 */
class SortedSpans<T extends number | bigint> {
  readonly #spans: Span<T>[];
  readonly #maxEnd: T[];

  constructor(spans: Span<T>[]) {
    this.#spans = spans.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.#maxEnd = [];
    let max: T | undefined;
    for (const span of this.#spans) {
      if (max === undefined || span.end > max) max = span.end;
      this.#maxEnd.push(max);
    }
  }

  get size(): number {
    return this.#spans.length;
  }

  /** Every rule whose range holds the address, most specific (smallest) first. */
  find(address: T, now: number): IpRule[] {
    let low = 0;
    let high = this.#spans.length - 1;
    let last = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if ((this.#spans[middle] as Span<T>).start <= address) {
        last = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    const found: Span<T>[] = [];
    for (let i = last; i >= 0 && (this.#maxEnd[i] as T) >= address; i -= 1) {
      const span = this.#spans[i] as Span<T>;
      if (span.end >= address && (span.rule.expiresAt === null || span.rule.expiresAt > now))
        found.push(span);
    }
    return found.sort((a, b) => compareSize(a, b)).map((span) => span.rule);
  }
}

function compareSize<T extends number | bigint>(a: Span<T>, b: Span<T>): number {
  const sizeA = BigInt(a.end) - BigInt(a.start);
  const sizeB = BigInt(b.end) - BigInt(b.start);
  return sizeA < sizeB ? -1 : sizeA > sizeB ? 1 : 0;
}

/** The decision for one address. */
export interface IpDecision {
  action: IpAction;
  rule: IpRule;
}

/**
 * Allow and deny rules, checked in logarithmic time per request. IPv4 addresses (also written as
 * IPv4-mapped IPv6) are looked up as 32-bit numbers, other IPv6 addresses as 128-bit ones. An
 * allow rule wins over any deny rule or ban covering the same address: it is how an operator
 * exempts a monitoring probe or an office from automatic bans.
 */
export class IpRuleSet {
  readonly #v4: SortedSpans<number>;
  readonly #v6: SortedSpans<bigint>;

  constructor(rules: readonly IpRule[]) {
    const v4: Span<number>[] = [];
    const v6: Span<bigint>[] = [];
    for (const rule of rules) {
      const { start, end } = rule.range;
      // The part of the range inside the IPv4-mapped block goes to the IPv4 list.
      if (end >= IPV4_BASE && start <= IPV4_LAST) {
        const from = start > IPV4_BASE ? start : IPV4_BASE;
        const to = end < IPV4_LAST ? end : IPV4_LAST;
        v4.push({ start: Number(from - IPV4_BASE), end: Number(to - IPV4_BASE), rule });
      }
      if (start < IPV4_BASE || end > IPV4_LAST) v6.push({ start, end, rule });
    }
    this.#v4 = new SortedSpans(v4);
    this.#v6 = new SortedSpans(v6);
  }

  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** The allow or deny decision for a client address, or null when no live rule covers it. */
  decide(ip: string, now: number): IpDecision | null {
    if (this.size === 0) return null;
    let rules: IpRule[];
    if (isIPv4(ip)) rules = this.#v4.find(ipv4Value(ip), now);
    else {
      const value = parseIp(ip);
      if (value === null) return null;
      rules =
        value >= IPV4_BASE && value <= IPV4_LAST
          ? this.#v4.find(Number(value - IPV4_BASE), now)
          : this.#v6.find(value, now);
    }
    if (rules.length === 0) return null;
    const allow = rules.find((rule) => rule.action === 'allow');
    const rule = allow ?? (rules[0] as IpRule);
    return { action: rule.action, rule };
  }
}
