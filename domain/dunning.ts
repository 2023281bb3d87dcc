/** Default dunning schedule: three retries of a failed collection, days apart (ARCHITECTURE.md, "Instruction lifecycle"). */
export const DEFAULT_DUNNING_DELAYS_MS: readonly number[] = [1, 3, 5].map((days) => days * 24 * 60 * 60 * 1000);

/** Arrears (LATE with nothing planned) expire after this many days by default; a FAILED instruction can be retried as long. */
export const DEFAULT_ARREARS_EXPIRY_DAYS = 30;
