import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real servers, namespaces and child processes: keep parallelism modest on 2 cores.
    maxWorkers: 2,
    pool: 'forks',
  },
});
