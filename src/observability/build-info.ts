import { createRequire } from 'node:module';

// package.json is two levels up from both src/observability and dist/observability.
const manifest = createRequire(import.meta.url)('../../package.json') as { name: string; version: string };

/** The running build: package version and runtime. */
export const BUILD_INFO = Object.freeze({
  name: manifest.name,
  version: manifest.version,
  nodeVersion: process.version,
});
