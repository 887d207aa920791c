export { identityFailureMetrics } from './identity-failure-metrics.ts';
export {
  MetricHistory,
  type MetricHistoryOptions,
  type RangeQuery,
  type SeriesInfo,
} from './metric-history.ts';
export type { Across, SeriesKind } from './series-definitions.ts';
