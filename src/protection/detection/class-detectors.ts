import { crlfDetector } from './crlf-detector.ts';
import { xssDetector } from './html/xss-detector.ts';
import { nosqliDetector } from './nosqli-detector.ts';
import { pathTraversalDetector } from './path-traversal-detector.ts';
import { prototypePollutionDetector } from './prototype-pollution-detector.ts';
import { scannerDetector } from './scanner-detector.ts';
import { cmdiDetector } from './shell/cmdi-detector.ts';
import { sqliDetector } from './sql/sqli-detector.ts';
import { ssrfDetector } from './ssrf/ssrf-detector.ts';
import type { ClassDetector } from './subject.ts';

/** Every detector, one per attack class, in reporting order. */
export const CLASS_DETECTORS: readonly ClassDetector[] = [
  sqliDetector,
  xssDetector,
  cmdiDetector,
  pathTraversalDetector,
  ssrfDetector,
  nosqliDetector,
  prototypePollutionDetector,
  crlfDetector,
  scannerDetector,
];
