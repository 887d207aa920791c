import { collectDefaultMetrics, type Registry } from 'prom-client';

// prom-client defaults that `promtool check metrics` rejects: gauges named *_total (only counters
// may end in _total). The per-type gauges (`nodejs_active_handles{type}`…) carry the same numbers.
const NON_CONFORMING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Node.js and process metrics (prom-client's defaults, lint-clean). */
export function registerRuntimeMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of NON_CONFORMING_DEFAULTS) registry.removeSingleMetric(name);
}
