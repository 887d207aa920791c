import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { it } from 'vitest';

/** promtool, from the Debian package `prometheus`. */
export const PROMTOOL = '/usr/bin/promtool';
const requireServices = process.env.BASTION_REQUIRE_SERVICES === '1';
const hasPromtool = existsSync(PROMTOOL);
if (!hasPromtool && !requireServices) {
  console.warn(
    `[skip] promtool not found at ${PROMTOOL} (Debian package prometheus); promtool checks are skipped`,
  );
}

/** `it`, skipped (with a line saying so) when promtool is missing, except in CI where it fails. */
export function withPromtool(name: string, test: () => void | Promise<void>): void {
  it.skipIf(!hasPromtool && !requireServices)(name, test);
}

/** Runs promtool with `args` (and `input` on stdin); returns its exit status and everything it printed. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  if (!hasPromtool) {
    throw new Error(`promtool is required (BASTION_REQUIRE_SERVICES=1) but missing at ${PROMTOOL}`);
  }
  const result = spawnSync(PROMTOOL, args, { input, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}
