import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest';

/**
 * Ends the run with one plain line, `Tests: N passed, N failed, N skipped`, that any CI log reader
 * understands whatever vitest's own formatting does.
 */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []) {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const visit = (task: RunnerTask) => {
      if (task.type === 'suite') return task.tasks.forEach(visit);
      const state = task.result?.state;
      if (state === 'pass') counts.passed++;
      else if (state === 'fail') counts.failed++;
      else counts.skipped++;
    };
    files.forEach((file) => {
      const failedBefore = counts.failed;
      file.tasks.forEach(visit);
      // A file failed outside its tests (it did not load, or a beforeAll or afterAll hook threw): its
      // tests read as skipped, and the run must not read as passed.
      if (file.result?.state === 'fail' && counts.failed === failedBefore) counts.failed++;
    });
    counts.failed += errors.length;
    console.log(`\nTests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
}
