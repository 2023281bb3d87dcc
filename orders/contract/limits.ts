/** An order holds at most this many instructions, as submitted and as added later. */
export const MAX_INSTRUCTIONS_PER_ORDER = 500;

/**
 * An order takes at most this many refunds, over all its instructions: a continued run carries each
 * (test/unit/largest-order-input.test.ts measures the largest state against Temporal's payload limit).
 */
export const MAX_REFUNDS_PER_ORDER = 100;

/** A batch of orders (POST /order-management/batch) holds at most this many. */
export const MAX_ORDERS_PER_BATCH = 1000;

/** How long a caller waits for Temporal to take an order's workflow before leaving it to the reconciler. */
export const START_DEADLINE_MS = 5_000;

/** How long a caller waits for a running order to take a change. */
export const UPDATE_DEADLINE_MS = 15_000;
