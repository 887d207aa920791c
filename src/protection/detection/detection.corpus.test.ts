import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type AttackClass, createDetector } from './index.ts';

/** The tuning corpus (see its README); set DETECTION_CORPUS to use another copy. */
const CORPUS_DIR =
  process.env.DETECTION_CORPUS ??
  fileURLToPath(new URL('../../../../shared/corpus/attack-detection', import.meta.url));
const MIN_DETECTION = 0.97;
const MAX_FALSE_POSITIVES = 0.005;

const CLASSES: readonly (readonly [AttackClass, string])[] = [
  ['sqli', 'sqli.jsonl'],
  ['xss', 'xss.jsonl'],
  ['cmdi', 'cmdi.jsonl'],
  ['path_traversal', 'path-traversal.jsonl'],
  ['ssrf', 'ssrf.jsonl'],
  ['nosqli', 'nosqli.jsonl'],
  ['prototype_pollution', 'prototype-pollution.jsonl'],
];

function payloads(file: string): string[] {
  return readFileSync(join(CORPUS_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { payload: string }).payload);
}

const available = existsSync(join(CORPUS_DIR, 'benign.jsonl'));
if (!available) console.log(`Skipping the corpus targets: no corpus at ${CORPUS_DIR} (set DETECTION_CORPUS)`);

// CI (BASTION_REQUIRE_SERVICES=1) has the corpus beside the repository: there a missing corpus fails.
describe.skipIf(!available && process.env.BASTION_REQUIRE_SERVICES !== '1')(
  'tuning corpus, as query values',
  () => {
    const detector = createDetector();

    it.each(CLASSES)('detects at least 97%% of %s', (attackClass, file) => {
      const all = payloads(file);
      const missed = all.filter(
        (payload) =>
          !detector.inspectValue(payload, 'query.q').some((finding) => finding.class === attackClass),
      );
      expect(
        (all.length - missed.length) / all.length,
        `missed: ${JSON.stringify(missed.slice(0, 20))}`,
      ).toBeGreaterThanOrEqual(MIN_DETECTION);
    });

    it('flags at most 0.5% of the benign values', () => {
      const benign = payloads('benign.jsonl');
      const flagged = benign.filter((value) => detector.inspectValue(value, 'query.q').length > 0);
      expect(flagged.length / benign.length, `flagged: ${JSON.stringify(flagged)}`).toBeLessThanOrEqual(
        MAX_FALSE_POSITIVES,
      );
    });
  },
);
