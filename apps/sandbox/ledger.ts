import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type SandboxAppId = 'SANDBOX_CARD' | 'SANDBOX_BANK' | 'SANDBOX_VOUCHERS';
export type SandboxPaymentMethod = 'CARD' | 'BANK_DEBIT' | 'BANK_TRANSFER' | 'VOUCHER';
export type PaymentStatus = 'PENDING' | 'SETTLED' | 'DECLINED' | 'RETURNED' | 'CHARGED_BACK';
export type RefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

/** A payment as the merchant asked for it; the same idempotency key must come with the same request. */
export interface SandboxPaymentRequest {
  appId: SandboxAppId;
  paymentMethod: SandboxPaymentMethod;
  direction: 'DEBIT' | 'CREDIT';
  amountMinor: string;
  currency: string;
  country: string;
  instrument: string;
  reference: { tenantId: string; orderRef: string; instructionRef: string };
  callbackUrl?: string;
}

export interface PaymentRecord {
  /** Absent in ledgers from before refunds: a payment. */
  kind?: 'PAYMENT';
  id: string;
  /** The merchant's key: it scopes idempotency keys and visibility, and signs callbacks after a restart too. */
  apiKey: string;
  idempotencyKey: string;
  request: SandboxPaymentRequest;
  status: PaymentStatus;
  declineCode?: string;
  retryable?: boolean;
  voucherCode?: string;
  /** RETURNED: the bank's return code; CHARGED_BACK: the dispute's reason. */
  returnCode?: string;
  /** RETURNED, CHARGED_BACK: the money taken back (what had not been refunded). */
  returnedAmountMinor?: string;
  createdAt: string;
  updatedAt: string;
}

/** A refund as the merchant asked for it. */
export interface SandboxRefundRequest {
  paymentId: string;
  amountMinor: string;
  currency: string;
  reason?: string;
  reference: { tenantId: string; orderRef: string; instructionRef: string };
  callbackUrl?: string;
}

export interface RefundRecord {
  kind: 'REFUND';
  id: string;
  apiKey: string;
  idempotencyKey: string;
  request: SandboxRefundRequest;
  status: RefundStatus;
  failureCode?: string;
  createdAt: string;
  updatedAt: string;
}

/** Money taken back from a settled payment: a bank return, or a card chargeback. */
export interface ReversalRecord {
  kind: 'RETURN' | 'CHARGEBACK';
  id: string;
  apiKey: string;
  /** One per payment: `reversal:{paymentId}`. */
  idempotencyKey: string;
  paymentId: string;
  amountMinor: string;
  code: string;
  createdAt: string;
  updatedAt: string;
}

export type LedgerRecord = PaymentRecord | RefundRecord | ReversalRecord;

/**
 * The provider's memory of every payment it took: an append-only JSON-lines file with a full record
 * per create and per status change, replayed on open (the last record of an id wins).
 *
 * Writes are synchronous and fsynced. That blocks the event loop for a moment, which a sandbox can
 * afford, and buys two things: nothing is answered that a restart could forget, and no other request
 * runs between looking up an idempotency key and recording its payment, so one key never makes two.
 */
export class Ledger {
  private readonly records = new Map<string, LedgerRecord>();
  private readonly idsByIdempotencyKey = new Map<string, string>();

  private constructor(private fd: number | undefined) {}

  static open(dataDir: string): Ledger {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, 'ledger.jsonl');
    const lines = existsSync(path) ? readWholeLines(path) : [];
    // The file holds API keys, which sign callbacks: readable by the provider alone.
    const ledger = new Ledger(openSync(path, 'a', 0o600));
    syncDirectory(dataDir);
    lines.forEach((line, index) => {
      try {
        ledger.remember(JSON.parse(line) as LedgerRecord);
      } catch (error) {
        throw new Error(`${path}: line ${index + 1} is not a payment record`, { cause: error });
      }
    });
    return ledger;
  }

  /** Writes the record through to disk, then makes it the payment's current state. */
  append(record: LedgerRecord): void {
    if (this.fd === undefined) throw new Error('the sandbox ledger is closed');
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    for (let written = 0; written < line.length;) written += writeSync(this.fd, line, written);
    fsyncSync(this.fd);
    this.remember(record);
  }

  get(id: string): PaymentRecord | undefined {
    const record = this.records.get(id);
    return record && isPayment(record) ? record : undefined;
  }

  getRefund(id: string): RefundRecord | undefined {
    const record = this.records.get(id);
    return record?.kind === 'REFUND' ? record : undefined;
  }

  findByIdempotencyKey(apiKey: string, idempotencyKey: string): PaymentRecord | undefined {
    const id = this.idsByIdempotencyKey.get(idempotencyScope(apiKey, idempotencyKey));
    const record = id === undefined ? undefined : this.records.get(id);
    return record && isPayment(record) ? record : undefined;
  }

  findRefundByIdempotencyKey(apiKey: string, idempotencyKey: string): RefundRecord | undefined {
    const id = this.idsByIdempotencyKey.get(idempotencyScope(apiKey, idempotencyKey, 'REFUND'));
    const record = id === undefined ? undefined : this.records.get(id);
    return record?.kind === 'REFUND' ? record : undefined;
  }

  /** Every record in creation order, as it is now: payments, refunds, returns and chargebacks. */
  all(): LedgerRecord[] {
    return [...this.records.values()];
  }

  /** Every payment in creation order, as it is now. */
  list(): PaymentRecord[] {
    return this.all().filter(isPayment);
  }

  /** The refunds of a payment, in creation order. */
  refundsOf(paymentId: string): RefundRecord[] {
    return this.all().filter((r): r is RefundRecord => r.kind === 'REFUND' && r.request.paymentId === paymentId);
  }

  /** The return or chargeback of a payment, if it had one. */
  reversalOf(paymentId: string): ReversalRecord | undefined {
    return this.all().find(
      (r): r is ReversalRecord => (r.kind === 'RETURN' || r.kind === 'CHARGEBACK') && r.paymentId === paymentId,
    );
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private remember(record: LedgerRecord): void {
    // Map.set keeps an existing id in its first place, so list() stays in creation order.
    this.records.set(record.id, record);
    const kind =
      record.kind === 'REFUND' || record.kind === 'RETURN' || record.kind === 'CHARGEBACK' ? record.kind : undefined;
    this.idsByIdempotencyKey.set(idempotencyScope(record.apiKey, record.idempotencyKey, kind), record.id);
  }
}

export function isPayment(record: LedgerRecord): record is PaymentRecord {
  return record.kind === undefined || record.kind === 'PAYMENT';
}

/**
 * Idempotency keys belong to one merchant: two merchants may use the same key for different payments.
 * Refunds (and reversals) have keys of their own: a refund's key never names a payment.
 */
export function idempotencyScope(apiKey: string, idempotencyKey: string, kind?: LedgerRecord['kind']): string {
  return JSON.stringify(kind && kind !== 'PAYMENT' ? [apiKey, kind, idempotencyKey] : [apiKey, idempotencyKey]);
}

/**
 * The file's complete lines. A crash in the middle of an append leaves a partial last line whose
 * payment was never answered; it is cut off so that the next append starts on a line of its own.
 */
function readWholeLines(path: string): string[] {
  const content = readFileSync(path);
  const end = content.lastIndexOf(0x0a) + 1;
  if (end < content.length) truncateSync(path, end);
  return content
    .subarray(0, end)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '');
}

/** A new file's directory entry is only durable once the directory itself is synced. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
