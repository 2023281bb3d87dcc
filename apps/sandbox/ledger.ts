import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type SandboxAppId = 'SANDBOX_CARD' | 'SANDBOX_BANK' | 'SANDBOX_VOUCHERS';
export type SandboxPaymentMethod = 'CARD' | 'BANK_DEBIT' | 'BANK_TRANSFER' | 'VOUCHER';
export type PaymentStatus = 'PENDING' | 'SETTLED' | 'DECLINED';

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
  id: string;
  /** The merchant's key: it scopes idempotency keys and visibility, and signs callbacks after a restart too. */
  apiKey: string;
  idempotencyKey: string;
  request: SandboxPaymentRequest;
  status: PaymentStatus;
  declineCode?: string;
  retryable?: boolean;
  voucherCode?: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * The provider's memory of every payment it took: an append-only JSON-lines file with a full record
 * per create and per status change, replayed on open (the last record of an id wins).
 *
 * Writes are synchronous and fsynced. That blocks the event loop for a moment, which a sandbox can
 * afford, and buys two things: nothing is answered that a restart could forget, and no other request
 * runs between looking up an idempotency key and recording its payment, so one key never makes two.
 */
export class Ledger {
  private readonly records = new Map<string, PaymentRecord>();
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
        ledger.remember(JSON.parse(line) as PaymentRecord);
      } catch (error) {
        throw new Error(`${path}: line ${index + 1} is not a payment record`, { cause: error });
      }
    });
    return ledger;
  }

  /** Writes the record through to disk, then makes it the payment's current state. */
  append(record: PaymentRecord): void {
    if (this.fd === undefined) throw new Error('the sandbox ledger is closed');
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    for (let written = 0; written < line.length;) written += writeSync(this.fd, line, written);
    fsyncSync(this.fd);
    this.remember(record);
  }

  get(id: string): PaymentRecord | undefined {
    return this.records.get(id);
  }

  findByIdempotencyKey(apiKey: string, idempotencyKey: string): PaymentRecord | undefined {
    const id = this.idsByIdempotencyKey.get(idempotencyScope(apiKey, idempotencyKey));
    return id === undefined ? undefined : this.records.get(id);
  }

  /** Every payment in creation order, as it is now. */
  list(): PaymentRecord[] {
    return [...this.records.values()];
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private remember(record: PaymentRecord): void {
    // Map.set keeps an existing id in its first place, so list() stays in creation order.
    this.records.set(record.id, record);
    this.idsByIdempotencyKey.set(idempotencyScope(record.apiKey, record.idempotencyKey), record.id);
  }
}

/** Idempotency keys belong to one merchant: two merchants may use the same key for different payments. */
export function idempotencyScope(apiKey: string, idempotencyKey: string): string {
  return JSON.stringify([apiKey, idempotencyKey]);
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
