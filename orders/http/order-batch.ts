import type { EntityManager } from '@mikro-orm/postgresql';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { toApiError } from '../../api/http/error-handler.js';
import { ApiError } from '../../api/http/problem.js';
import { validate } from '../../api/http/validate.js';
import { Refusal } from '../../domain/refusal.js';
import type { OrderService } from '../order-service.js';
import { CreateOrderSchema, type CreateOrderInput } from './schemas.js';

/** Workflows started at once while a batch is taken: enough to hide Temporal's round trip, few enough to leave it room. */
const STARTS_AT_ONCE = 16;
/** Orders stored at once: each holds a pooled connection for each of its statements, and other requests need some. */
const STORED_AT_ONCE = 4;

export interface OrderBatchResult {
  index: number;
  orderRef?: string;
  status: number;
  orderId?: string;
  problem?: ReturnType<ApiError['toProblem']>;
}

export interface OrderBatch {
  results: OrderBatchResult[];
  taken: number;
  alreadyTaken: number;
  refused: number;
}

/**
 * Takes each order of a batch as POST /order-management takes one: checked on its own, stored in a
 * statement of its own, its workflow started once that is done. One refused order refuses
 * only itself. An orderRef the tenant already has is not taken again: when the stored order was
 * created from this same order, its result is the stored order's id (status 200), so a batch sent
 * again after a lost answer takes nothing twice; another order under that ref is a 409, as a
 * single POST's would be, so a corrected order is never taken for the one it was meant to replace. An
 * outage (the database gone) fails the request: the orders already stored stay taken, and sending
 * the batch again takes the rest.
 */
export async function takeOrderBatch(
  em: EntityManager,
  tenantId: string,
  items: unknown[],
  orders: OrderService,
  log: Logger,
  /** Items the API refused at the door for what they hold (`refusedBatchItems`), by index. */
  refusedItems: ReadonlyMap<number, ApiError> = new Map(),
): Promise<OrderBatch> {
  const starts = pLimit(STARTS_AT_ONCE);
  const stores = pLimit(STORED_AT_ONCE);
  const starting: Promise<void>[] = [];
  let startsFailing = false;
  let leftToReconciler = 0;
  /** Each orderRef's latest take in this batch: one named again waits for it, then is taken as if sent again. */
  const takes = new Map<string, Promise<OrderBatchResult>>();
  const refused = (index: number, orderRef: string | undefined, err: unknown): OrderBatchResult => {
    if (!(err instanceof Refusal) && !(err instanceof ApiError)) throw err;
    const problem = toApiError(err);
    return { index, orderRef, status: problem.status, problem: problem.toProblem() };
  };
  const take = async (index: number, input: CreateOrderInput): Promise<OrderBatchResult> => {
    const orderRef = input.orderRef;
    try {
      const taken = await orders.createOrder(em.fork(), tenantId, input);
      if (taken.sentAgain) return { index, orderRef, status: 200, orderId: taken.stored.order.id };
      const { created } = taken;
      starting.push(
        starts(async () => {
          // Once a start fails (Temporal unreachable, most likely), the rest are not tried: each would
          // wait out its deadline, a thousand of them for minutes, and the reconciler starts them all.
          if (startsFailing) return void (leftToReconciler += 1);
          if (!(await orders.start(created, log))) startsFailing = true;
        }),
      );
      return { index, orderRef, status: 202, orderId: created.order.id };
    } catch (err) {
      return refused(index, orderRef, err instanceof Refusal ? placedInBatch(err, index) : err);
    }
  };
  // Checked first, all of them; then stored a few at a time, each in a statement of its own. An
  // orderRef named again waits for the one before it, then is answered as a single POST sent again
  // would be: 200 for the same order once taken, 409 for other contents under its ref.
  const results = await Promise.all(
    items.map(async (item, index) => {
      // An order holding a card or bank account number (left out of the body at the door) is named
      // by its place alone: its orderRef may be the number.
      const unstorable = refusedItems.get(index);
      if (unstorable) return refused(index, undefined, unstorable);
      const orderRef = refOf(item);
      let input: CreateOrderInput;
      try {
        input = validate(CreateOrderSchema, item, `orders[${index}]`);
      } catch (err) {
        return refused(index, orderRef, err);
      }
      // No await before this point: `takes` is filled in the items' order, so each waits for the one before it.
      const earlier = takes.get(input.orderRef);
      const taking = earlier ? earlier.then(() => stores(() => take(index, input))) : stores(() => take(index, input));
      takes.set(input.orderRef, taking);
      return taking;
    }),
  );
  await Promise.all(starting);
  const count = (test: (status: number) => boolean) => results.filter((r) => test(r.status)).length;
  const batch = {
    results,
    taken: count((s) => s === 202),
    alreadyTaken: count((s) => s === 200),
    refused: count((s) => s >= 400),
  };
  log.info(
    { tenantId, taken: batch.taken, alreadyTaken: batch.alreadyTaken, refused: batch.refused },
    'order batch taken',
  );
  if (leftToReconciler > 0) {
    log.warn(
      { tenantId, leftToReconciler },
      'order workflows not started after a start failed: the reconciler starts them',
    );
  }
  return batch;
}

/** The orderRef an item names, to name its result by, when it names one. */
function refOf(item: unknown): string | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const { orderRef } = item as { orderRef?: unknown };
  return typeof orderRef === 'string' ? orderRef : undefined;
}

/**
 * A refusal of one order, its fields named as in the batch (`orders[3].instructions[0].schemeId`), as
 * the schema's own errors are: the order service names them as in a single create.
 */
function placedInBatch(refusal: Refusal, index: number): Refusal {
  if (!refusal.errors) return refusal;
  const errors = refusal.errors.map((error) => ({ ...error, path: `orders[${index}].${error.path}` }));
  return new Refusal(refusal.kind, refusal.code, refusal.message, errors);
}
