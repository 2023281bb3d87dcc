import { AccountSchema } from './account.js';
import { AppInstallationSchema } from './app-installation.js';
import { AuditEntrySchema } from './audit-entry.js';
import { CustomerSchema } from './customer.js';
import { PaymentInstrumentSchema } from './payment-instrument.js';
import { IdempotencyRecordSchema } from './idempotency-record.js';
import { PaymentInstructionSchema, PaymentOrderSchema } from './payment-order.js';
import { PaymentLinkRevocationSchema } from './payment-link-revocation.js';
import { PaymentRefundSchema } from './payment-refund.js';
import { PaymentSettlementSchema } from './payment-settlement.js';
import { ReconciliationEntrySchema, ReconciliationItemSchema, ReconciliationRunSchema } from './reconciliation.js';
import { ProviderCallbackSchema } from './provider-callback.js';
import { ProviderKeyScopeSchema } from './provider-key-scope.js';
import { SchemeSchema } from './scheme.js';
import { SchemeVersionSchema } from './scheme-version.js';
import { SecurityKeySchema } from './security-key.js';
import { TenantSchema } from './tenant.js';
import { UsedNonceSchema } from './used-nonce.js';
import { OrderEventSchema } from './order-event.js';
import { WebhookAttemptSchema } from './webhook-attempt.js';
import { WebhookDeliverySchema } from './webhook-delivery.js';
import { WebhookEndpointSchema } from './webhook-endpoint.js';
import { VoucherGroupSchema } from './voucher-group.js';

export { Account } from './account.js';
export { AppInstallation } from './app-installation.js';
export { AuditEntry } from './audit-entry.js';
export { Customer } from './customer.js';
export { PaymentInstrument } from './payment-instrument.js';
export { IdempotencyRecord } from './idempotency-record.js';
export { ORDER_REF_UNIQUE, PaymentInstruction, PaymentOrder } from './payment-order.js';
export { PaymentLinkRevocation } from './payment-link-revocation.js';
export { PaymentRefund } from './payment-refund.js';
export { PaymentSettlement } from './payment-settlement.js';
export {
  ReconciliationItem,
  ReconciliationEntry,
  ReconciliationRun,
  type MismatchKind,
  type ReconciliationStatus,
  type ReconciliationTrigger,
} from './reconciliation.js';
export { ProviderCallback } from './provider-callback.js';
export { ProviderKeyScope } from './provider-key-scope.js';
export { Scheme } from './scheme.js';
export { SchemeVersion } from './scheme-version.js';
export { SecurityKey } from './security-key.js';
export { Tenant } from './tenant.js';
export { UsedNonce } from './used-nonce.js';
export { OrderEvent } from './order-event.js';
export { WebhookAttempt } from './webhook-attempt.js';
export { WebhookDelivery, type DeliveryStatus } from './webhook-delivery.js';
export { WebhookEndpoint } from './webhook-endpoint.js';
export { VoucherGroup, type VoucherGroupEntry } from './voucher-group.js';

export const ALL_ENTITIES = [
  AccountSchema,
  TenantSchema,
  SecurityKeySchema,
  UsedNonceSchema,
  AuditEntrySchema,
  PaymentOrderSchema,
  PaymentInstructionSchema,
  IdempotencyRecordSchema,
  AppInstallationSchema,
  SchemeSchema,
  SchemeVersionSchema,
  VoucherGroupSchema,
  CustomerSchema,
  PaymentInstrumentSchema,
  ProviderCallbackSchema,
  ProviderKeyScopeSchema,
  PaymentLinkRevocationSchema,
  PaymentRefundSchema,
  PaymentSettlementSchema,
  WebhookEndpointSchema,
  OrderEventSchema,
  WebhookDeliverySchema,
  WebhookAttemptSchema,
  ReconciliationRunSchema,
  ReconciliationItemSchema,
  ReconciliationEntrySchema,
];
