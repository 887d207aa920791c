export { createDetector, DETECTOR_DEFAULTS } from './create-detector.ts';
export type { AttackClass, Detector, DetectorOptions, Finding, RequestParts } from './types.ts';
export { ATTACK_CLASSES } from './types.ts';
