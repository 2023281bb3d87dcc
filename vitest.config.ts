import { defineConfig } from 'vitest/config';
import { laneCount } from './test/support/lane-count.js';

const lanes = laneCount();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // A file runs in a lane of services of its own (test/support/lane-count.ts), one file per lane
    // at a time: within a lane, a file's worker is the only one polling its task queue.
    fileParallelism: lanes > 1,
    maxWorkers: lanes,
    minWorkers: 1,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
