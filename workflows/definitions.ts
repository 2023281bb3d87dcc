import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { OrderSnapshot } from '../domain/order.js';
import type { ProviderResult } from '../domain/payment-outcome.js';

/** Signals, queries and updates of the payment-order workflow, importable by the API without the workflow body. */
export const orderStateQuery = defineQuery<OrderSnapshot>('orderState');

/** A provider's asynchronous result for a payment it answered PENDING, delivered by the API from a verified callback. */
export const providerResultSignal = defineSignal<[ProviderResult]>('providerResult');

export const PAYMENTS_TASK_QUEUE = 'payments';
