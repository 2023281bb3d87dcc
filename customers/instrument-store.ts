import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager, type FilterQuery } from '@mikro-orm/postgresql';
import { findPage, type Page, type PageQuery } from '../api/http/pagination.js';
import { Customer, PaymentInstrument } from '../db/entities/index.js';
import { sealedContext } from '../db/sealed-columns.js';
import type { SecretBox } from '../db/secret-box.js';
import { findApp } from '../domain/app-catalog.js';
import type { InstalledApp } from '../domain/installed-app.js';
import { tokenHint, type TokenisedInstrument } from '../domain/instrument.js';
import { madeUnderDigest } from '../domain/retired-secrets.js';
import { Refusal } from '../domain/refusal.js';

/** What pays with a stored instrument: its provider's token, opened only where the provider is called. */
export interface InstrumentToken {
  /** Absent when it pays nothing more: removed, or not saved and spent on its one payment. */
  token?: string;
  /** Not saved: it pays only the payment it was given for (`InstrumentStore.claim`). */
  saved: boolean;
  appId: string;
  paymentMethod: string;
  status: PaymentInstrument['status'];
  mandateStatus: PaymentInstrument['mandateStatus'];
}

/**
 * Stored instruments (ARCHITECTURE.md, "Customers"): tokens from providers' hosted forms, sealed at
 * rest like app secrets and bound to their row, so a token copied to another row does not open.
 */
/** The most saved instruments a customer's record and the payment page show (the newest). */
export const SHOWN_SAVED_MAX = 100;

/** A customer's saved instruments still in use. */
function savedBy(customer: Customer): FilterQuery<PaymentInstrument> {
  return { tenantId: customer.tenantId, customerId: customer.id, saved: true, status: 'ACTIVE' };
}

export class InstrumentStore {
  constructor(private readonly secretBox: SecretBox) {}

  /**
   * Keeps what a hosted form gave back: saved for the customer when one is given (listed, and
   * offered again), otherwise for the one payment it was entered for (`enteredFor`, the instruction
   * the page took it for); with the callback secret it was made under (`madeAt`, the installation the
   * form was exchanged under), which says which of its provider's accounts a mandate's news comes from.
   */
  add(
    em: EntityManager,
    tenantId: string,
    appId: string,
    tokenised: TokenisedInstrument,
    { customer, enteredFor, madeAt }: { customer?: Customer; enteredFor?: string; madeAt?: InstalledApp } = {},
  ): PaymentInstrument {
    const id = randomUUID();
    const now = new Date();
    const app = findApp(appId);
    const madeUnder = app && madeAt ? madeUnderDigest(app, madeAt, id) : undefined;
    return em.create(PaymentInstrument, {
      id,
      tenantId,
      customerId: customer?.id ?? null,
      appId,
      paymentMethod: tokenised.paymentMethod,
      tokenCiphertext: this.secretBox.seal(tokenised.token, sealedContext('payment_instrument', id)),
      tokenHint: tokenHint(tokenised.token),
      display: tokenised.display,
      status: 'ACTIVE',
      saved: customer !== undefined,
      enteredFor: enteredFor ?? null,
      mandateRef: tokenised.mandate?.mandateRef ?? null,
      mandateStatus: tokenised.mandate?.status ?? null,
      mandateSignedAt: tokenised.mandate ? new Date(tokenised.mandate.signedAt) : null,
      madeUnderCiphertext: madeUnder ? this.secretBox.seal(madeUnder, sealedContext('payment_instrument', id)) : null,
      createdAt: now,
      updatedAt: now,
    });
  }

  /**
   * A customer's newest saved instruments still in use (at most SHOWN_SAVED_MAX), newest first: what
   * the customer's record and the payment page show. The list route pages through all of them.
   */
  saved(em: EntityManager, customer: Customer): Promise<PaymentInstrument[]> {
    return em.find(PaymentInstrument, savedBy(customer), {
      orderBy: { createdAt: 'desc', id: 'desc' },
      limit: SHOWN_SAVED_MAX,
    });
  }

  /** A page of a customer's saved instruments still in use, newest first. */
  savedPage(em: EntityManager, customer: Customer, page: PageQuery): Promise<Page<PaymentInstrument>> {
    return findPage(em, PaymentInstrument, savedBy(customer), page, 'id');
  }

  async findSaved(
    em: EntityManager,
    customer: Customer,
    instrumentId: string,
    lockMode?: LockMode.PESSIMISTIC_WRITE,
  ): Promise<PaymentInstrument> {
    const instrument = await em.findOne(
      PaymentInstrument,
      { id: instrumentId, tenantId: customer.tenantId, customerId: customer.id, saved: true, status: 'ACTIVE' },
      lockMode ? { lockMode } : {},
    );
    if (!instrument) throw new Refusal('not_found', 'instrument_not_found', `no instrument ${instrumentId}`);
    return instrument;
  }

  /**
   * Removed, not deleted: an instruction that names it goes LATE `instrument_removed` when it falls
   * due, instead of paying with a card the customer took back.
   */
  async remove(em: EntityManager, customer: Customer, instrumentId: string): Promise<PaymentInstrument> {
    // Locked: a second removal at once waits, then finds it removed (404), and is not audited too.
    const instrument = await this.findSaved(em, customer, instrumentId, LockMode.PESSIMISTIC_WRITE);
    instrument.status = 'REMOVED';
    // It pays nothing more: its token is kept nowhere (the hint and display stay, to match records).
    instrument.tokenCiphertext = null;
    instrument.updatedAt = new Date();
    return instrument;
  }

  /**
   * Entered on the provider's form for a payment that was then refused (the amount changed, another
   * tab paid first): no instruction names it, so unless saved it pays nothing and is kept nowhere.
   */
  async forgetUnpaid(em: EntityManager, instrument: PaymentInstrument): Promise<void> {
    if (instrument.saved) return;
    await em.nativeUpdate(
      PaymentInstrument,
      { id: instrument.id, tenantId: instrument.tenantId, saved: false },
      { tokenCiphertext: null, updatedAt: new Date() },
    );
  }

  /**
   * The token to pay with, for the payment activity; undefined for an instrument the tenant does not
   * have. Removed (or spent, below), it pays nothing and is not even opened.
   */
  async token(em: EntityManager, tenantId: string, instrumentId: string): Promise<InstrumentToken | undefined> {
    const instrument = await em.findOne(PaymentInstrument, { id: instrumentId, tenantId });
    if (!instrument) return undefined;
    const usable = instrument.status === 'ACTIVE' ? instrument.tokenCiphertext : null;
    return {
      ...(usable !== null
        ? { token: this.secretBox.open(usable, sealedContext('payment_instrument', instrument.id)) }
        : {}),
      saved: instrument.saved,
      appId: instrument.appId,
      paymentMethod: instrument.paymentMethod,
      status: instrument.status,
      mandateStatus: instrument.mandateStatus,
    };
  }

  /**
   * Whether `idempotencyKey` may charge this instrument the customer did not save: it pays the payment
   * they made with it and nothing else, so the first key to claim it (just before it is sent, every
   * check of ours passed) holds it, and any other is refused. A declined payment tried again, a due
   * date amended or a re-collection after a return would otherwise charge a card the customer chose
   * not to leave. Refused, its token is erased: the payment it was for had ended for good (a key
   * changes only after an answer, a refusal or a resolution, never while a call is unanswered).
   */
  async claim(em: EntityManager, tenantId: string, instrumentId: string, idempotencyKey: string): Promise<boolean> {
    // (Columns on the right of SET are read as they were before this statement.)
    const [claimed] = await em.getConnection().execute<{ charged_under_key: string }[]>(
      `update payment_instrument
          set charged_under_key = coalesce(charged_under_key, ?),
              token_ciphertext = case when charged_under_key is null or charged_under_key = ? then token_ciphertext end
        where id = ? and tenant_id = ?
    returning charged_under_key`,
      [idempotencyKey, idempotencyKey, instrumentId, tenantId],
    );
    return claimed?.charged_under_key === idempotencyKey;
  }
}
