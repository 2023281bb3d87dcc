import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, it } from 'vitest';
import { HISTORIES, historyFiles, readManifest, sha256Of } from '../support/histories.js';
import { quietTemporalLogs } from '../support/system.js';
import { testWorkflowBundle } from '../support/workflow-bundle.js';

/**
 * Orders run for months, so a workflow change must still replay the histories of orders already
 * running. Each committed history is replayed against today's workflow code; a change that is not
 * guarded with patched() fails here with a nondeterminism error.
 */
describe('committed workflow histories', () => {
  const files = historyFiles();

  it('exist', ({ expect }) => {
    expect(files.length).toBeGreaterThan(0);
  });

  it('are append-only: every one is in the manifest, unchanged, and none has gone', ({ expect }) => {
    const manifest = readManifest();
    expect(files).toEqual(Object.keys(manifest).sort());
    for (const file of files)
      expect(sha256Of(file), `${file} changed: record a new history instead`).toBe(manifest[file]);
  });

  it.each(files)('%s replays against the current workflow code', async (file) => {
    quietTemporalLogs();
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(new URL(file, HISTORIES)));
    await Worker.runReplayHistory({ workflowBundle: testWorkflowBundle() }, history);
  });
});
