// Apart from lanes.ts: vitest's config and global setup read it, where importing vitest itself is not allowed.

/**
 * How many test files run at once. Each lane has a database and a Temporal server of its own, so
 * files of different lanes never see each other's rows, workflows or task queues; files within a lane
 * run one after the other, as they were written to, and share its database in turn (a test that
 * reads every tenant's rows, such as the orphan reconciler's, sees what earlier files left). Most of a test's time is spent waiting (on timers,
 * providers, workers), not computing: three lanes keep a 2-core machine about 80% busy (the whole
 * suite took 518 s in three, 615 s in two). One lane where a second set of services cannot be had:
 * the embedded PGlite database (a single session), or a Temporal server given from outside
 * (TEMPORAL_ADDRESS, as CI's run on the production topology), whose `default` namespace and task
 * queues the lanes would share. `TEST_LANES` overrides.
 */
export function laneCount(env: NodeJS.ProcessEnv = process.env): number {
  if (env.TEST_LANES) {
    const lanes = Number(env.TEST_LANES);
    if (!Number.isInteger(lanes) || lanes < 1)
      throw new Error(`TEST_LANES must be a whole number ≥ 1, not ${env.TEST_LANES}`);
    return lanes;
  }
  return env.DATABASE_URL && !env.TEMPORAL_ADDRESS ? 3 : 1;
}
