import { TestWorkflowEnvironment } from '@temporalio/testing';
import { inject } from 'vitest';

const TRIES = 3;

/**
 * The Java time-skipping server, started for a test file. The SDK gives a server 5 s to answer, not
 * configurable (sdk-core's ephemeral_server); a JVM started on a loaded machine has taken longer (a
 * fresh clone's first run, the other lane starting beside it), failing the whole file in its
 * beforeAll. The server is started again on that timeout, up to three times.
 */
export async function startTimeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  for (let tried = 1; ; tried++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: inject('timeSkippingServerPath') } },
      });
    } catch (err) {
      if (tried >= TRIES || !(err instanceof Error) || !err.message.includes('did not start within')) throw err;
    }
  }
}
