import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Suites share one PostgreSQL database and one Redis; each test uses its own schema or key prefix.
    pool: 'forks',
    globalSetup: ['test/support/global-setup.ts'],
  },
});
