import { AccountSchema } from './account.js';
import { AuditEntrySchema } from './audit-entry.js';
import { IdempotencyRecordSchema } from './idempotency-record.js';
import { PaymentInstructionSchema } from './payment-instruction.js';
import { PaymentOrderSchema } from './payment-order.js';
import { SecurityKeySchema } from './security-key.js';
import { TenantSchema } from './tenant.js';
import { UsedNonceSchema } from './used-nonce.js';

export { Account } from './account.js';
export { AuditEntry } from './audit-entry.js';
export { IdempotencyRecord } from './idempotency-record.js';
export { PaymentInstruction } from './payment-instruction.js';
export { PaymentOrder } from './payment-order.js';
export { SecurityKey } from './security-key.js';
export { Tenant } from './tenant.js';
export { UsedNonce } from './used-nonce.js';

export const ALL_ENTITIES = [
  AccountSchema,
  TenantSchema,
  SecurityKeySchema,
  UsedNonceSchema,
  AuditEntrySchema,
  PaymentOrderSchema,
  PaymentInstructionSchema,
  IdempotencyRecordSchema,
];
