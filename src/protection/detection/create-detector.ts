import { CLASS_DETECTORS } from './class-detectors.ts';
import { CLASS_THRESHOLDS } from './class-thresholds.ts';
import { LocationFilter } from './location-filter.ts';
import { RequestInspection } from './request-inspection.ts';
import { ATTACK_CLASSES, type Detector, type DetectorOptions } from './types.ts';

/** Defaults of `DetectorOptions`. */
export const DETECTOR_DEFAULTS = {
  maxFindings: 10,
  maxDepth: 128,
  benignCache: 1024,
} as const;

/**
 * Compiles a detector once (classes, thresholds, exclusions); its `inspect` then runs on every
 * request. Invalid options throw a `TypeError` here, never at request time.
 */
export function createDetector(options: DetectorOptions = {}): Detector {
  const enabled = enabledDetectors(options);
  const thresholds = enabled.map((detector) => CLASS_THRESHOLDS[detector.attackClass]);
  const maxFindings = options.maxFindings ?? DETECTOR_DEFAULTS.maxFindings;
  if (!Number.isInteger(maxFindings) || maxFindings < 1) {
    throw new TypeError(`maxFindings must be a positive integer, got ${String(options.maxFindings)}`);
  }
  const filter =
    options.exclude !== undefined && options.exclude.length > 0
      ? new LocationFilter(options.exclude)
      : undefined;
  const maxDepth = options.maxDepth ?? DETECTOR_DEFAULTS.maxDepth;
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new TypeError(`maxDepth must be a positive integer, got ${String(options.maxDepth)}`);
  }
  const benignCache = options.benignCache ?? DETECTOR_DEFAULTS.benignCache;
  if (!Number.isInteger(benignCache) || benignCache < 0) {
    throw new TypeError(`benignCache must be a non-negative integer, got ${String(options.benignCache)}`);
  }
  const inspection = new RequestInspection(enabled, thresholds, filter, maxFindings, maxDepth, benignCache);
  return {
    inspect: (parts) => inspection.run(parts),
    inspectValue: (value, location) => inspection.runValue(value, location),
  };
}

function enabledDetectors(options: DetectorOptions) {
  const classes = options.classes ?? {};
  for (const name of Object.keys(classes)) {
    if (!(ATTACK_CLASSES as readonly string[]).includes(name))
      throw new TypeError(`Unknown attack class "${name}"`);
  }
  return CLASS_DETECTORS.filter((detector) => classes[detector.attackClass] !== false);
}
