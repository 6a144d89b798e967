import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Generous: tests count work, they do not time it, and a loaded 2-core machine is slow.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Tests spawn real servers, namespaces and child processes: keep parallelism modest on 2 cores.
    maxWorkers: 2,
    pool: 'forks',
  },
});
