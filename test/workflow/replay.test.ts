import { readdirSync, readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, it } from 'vitest';
import { WORKFLOWS_PATH } from '../../worker/create-worker.js';
import { quietTemporalLogs } from '../support/system.js';

const HISTORIES = new URL('./histories/', import.meta.url);

/**
 * Orders run for months, so a workflow change must still replay the histories of orders already
 * running. Each committed history is replayed against today's workflow code; a change that is not
 * guarded with patched() fails here with a nondeterminism error.
 */
describe('committed workflow histories', () => {
  const files = readdirSync(HISTORIES).filter((name) => name.endsWith('.binpb'));

  it('exist', ({ expect }) => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s replays against the current workflow code', async (file) => {
    quietTemporalLogs();
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(new URL(file, HISTORIES)));
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history);
  });
});
