import type { RunnerTask, RunnerTestFile } from 'vitest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import SummaryReporter from '../support/summary-reporter.js';

const test = (state?: 'pass' | 'fail' | 'skip') => ({ type: 'test', result: state && { state } }) as RunnerTask;
const file = (state: 'pass' | 'fail', tasks: RunnerTask[]) =>
  ({ type: 'suite', tasks, result: { state } }) as RunnerTestFile;

/** The summary line the reporter prints for these files. */
function summaryOf(files: RunnerTestFile[], errors: unknown[] = []): string {
  const printed = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  new SummaryReporter().onFinished(files, errors);
  return String(printed.mock.calls.at(-1)?.[0]).trim();
}

afterEach(() => vi.restoreAllMocks());

describe('the summary line', () => {
  it('counts the tests of each file by how they ended', () => {
    expect(summaryOf([file('fail', [test('pass'), test('fail'), test('skip')]), file('pass', [test('pass')])])).toBe(
      'Tests: 2 passed, 1 failed, 1 skipped',
    );
  });

  it('counts a file that failed outside its tests (a beforeAll that threw, its tests not run) as a failure', () => {
    expect(summaryOf([file('fail', [test(), test()]), file('pass', [test('pass')])])).toBe(
      'Tests: 1 passed, 1 failed, 2 skipped',
    );
  });

  it('counts a file that did not load, and an error outside any file', () => {
    expect(summaryOf([file('fail', [])], [new Error('unhandled')])).toBe('Tests: 0 passed, 2 failed, 0 skipped');
  });
});
