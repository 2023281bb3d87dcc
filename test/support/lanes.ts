import { inject } from 'vitest';

/** The services one lane of test files runs on: a database and a Temporal server no other lane uses. */
export interface Lane {
  databaseUrl: string;
  temporalAddress: string;
}

/** The lane of the test file running in this process (vitest numbers its workers from 1). */
export function lane(): Lane {
  const lanes = inject('lanes');
  const id = Number(process.env.VITEST_POOL_ID ?? '1');
  const found = lanes[id - 1];
  if (!found) throw new Error(`no test lane for vitest worker ${process.env.VITEST_POOL_ID} of ${lanes.length}`);
  return found;
}
