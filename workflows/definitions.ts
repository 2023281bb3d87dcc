import { defineQuery } from '@temporalio/workflow';
import type { OrderSnapshot } from '../domain/order.js';

/** Signals, queries and updates of the payment-order workflow, importable by the API without the workflow body. */
export const orderStateQuery = defineQuery<OrderSnapshot>('orderState');

export const PAYMENTS_TASK_QUEUE = 'payments';
