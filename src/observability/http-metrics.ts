import { Gauge, type Registry } from 'prom-client';
import { FastHistogram } from './fast-histogram.ts';

/** Route label shared by every request that matched no route (bounded cardinality). */
export const UNMATCHED_ROUTE = 'unmatched';

// Standard methods keep their name; anything else is folded so clients cannot invent labels.
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

/** The method as a metric label: a standard method, or `_OTHER`. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

// Seconds; OpenTelemetry's HTTP buckets plus two finer ones for fast APIs.
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

type Observer = { observe(value: number): void };
type LabelName = 'method' | 'route' | 'status_code';

/**
 * One route's label children, built when the route is registered so a request only does a
 * Map lookup by status code (and by method, for a route declared with several methods).
 */
export class RouteRecorder {
  readonly #histogram: FastHistogram;
  readonly #route: string;
  readonly #first: string;
  readonly #byMethod = new Map<string, Map<number, Observer>>();

  constructor(histogram: FastHistogram, methods: string | readonly string[], route: string) {
    this.#histogram = histogram;
    this.#route = route;
    const labels = [methods].flat().map(methodLabel);
    this.#first = labels[0] ?? '_OTHER';
    for (const label of [this.#first, ...labels]) this.#byMethod.set(label, new Map());
  }

  /** Records one finished request; `method` picks the label when the route has several. */
  observe(statusCode: number, seconds: number, method?: string): void {
    let label = this.#first;
    if (method !== undefined && this.#byMethod.size > 1) {
      const requested = methodLabel(method);
      if (this.#byMethod.has(requested)) label = requested;
    }
    const byStatus = this.#byMethod.get(label)!;
    let child = byStatus.get(statusCode);
    if (!child) {
      child = this.#histogram.series({ method: label, route: this.#route, status_code: String(statusCode) });
      byStatus.set(statusCode, child);
    }
    child.observe(seconds);
  }
}

/** HTTP server metrics following OpenTelemetry's names. */
export class HttpMetrics {
  readonly duration: FastHistogram;
  readonly active: Gauge;
  readonly #unmatched = new Map<string, RouteRecorder>();

  constructor(registry: Registry) {
    const labelNames: LabelName[] = ['method', 'route', 'status_code'];
    this.duration = new FastHistogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP server requests.',
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.active = new Gauge({
      name: 'http_server_active_requests',
      help: 'Number of HTTP server requests in flight.',
      registers: [registry],
    });
  }

  /** A recorder for a registered route and its method(s) (call once per route at start-up). */
  forRoute(methods: string | readonly string[], route: string): RouteRecorder {
    return new RouteRecorder(this.duration, methods, route);
  }

  /** The shared recorder for requests that matched no route, per method label. */
  forUnmatched(method: string): RouteRecorder {
    const label = methodLabel(method);
    let recorder = this.#unmatched.get(label);
    if (!recorder) {
      recorder = new RouteRecorder(this.duration, label, UNMATCHED_ROUTE);
      this.#unmatched.set(label, recorder);
    }
    return recorder;
  }
}
