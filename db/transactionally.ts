import type { EntityManager, TransactionOptions } from '@mikro-orm/postgresql';

/** What knex's transaction object shows of itself. */
interface KnexTransaction {
  isCompleted?(): boolean;
  executionPromise?: Promise<unknown>;
}

/**
 * `em.transactional`, with a failed BEGIN reported as what it was. knex runs the work even when the
 * transaction's BEGIN failed (the database gone, a connection cut), and each of its queries then
 * fails with only "Transaction query already complete": the BEGIN's own error, which names the
 * outage (a 503 to the caller, not a 500), is kept in the transaction's outcome and thrown instead.
 */
export function transactionally<T>(
  em: EntityManager,
  work: (em: EntityManager) => Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  return em.transactional(async (tx) => {
    try {
      const result = await work(tx);
      // Flushed here, not after: a change whose first statement is the flush fails in this `try`.
      await tx.flush();
      return result;
    } catch (err) {
      const trx = tx.getTransactionContext<KnexTransaction>();
      if (trx?.isCompleted?.() && trx.executionPromise) {
        const ended = await trx.executionPromise.then(
          () => undefined,
          (failure: unknown) => failure,
        );
        if (ended instanceof Error && ended !== err) throw ended;
      }
      throw err;
    }
  }, options);
}
