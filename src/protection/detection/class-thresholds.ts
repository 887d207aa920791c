import type { AttackClass } from './types.ts';

/**
 * Score from which a finding is reported, per class. Detectors score strong structural
 * evidence 70–95 and single weak signs below 50, so one threshold serves every class today;
 * the table is where a class would be tuned on its own.
 */
export const CLASS_THRESHOLDS: Readonly<Record<AttackClass, number>> = {
  sqli: 50,
  xss: 50,
  cmdi: 50,
  path_traversal: 50,
  ssrf: 50,
  nosqli: 50,
  prototype_pollution: 50,
  crlf: 50,
  scanner: 50,
};
