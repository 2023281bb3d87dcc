import { IdempotencyRecordSchema } from './idempotency-record.js';
import { PaymentInstructionSchema } from './payment-instruction.js';
import { PaymentOrderSchema } from './payment-order.js';

export { IdempotencyRecord } from './idempotency-record.js';
export { PaymentInstruction } from './payment-instruction.js';
export { PaymentOrder } from './payment-order.js';

export const ALL_ENTITIES = [PaymentOrderSchema, PaymentInstructionSchema, IdempotencyRecordSchema];
