import { randomBytes } from 'node:crypto';
import { sandboxId } from './api-key.js';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Express, type Request, type Response } from 'express';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import { z } from 'zod';
import { passesLuhn } from '../../domain/card-number.js';
import type { InstrumentDisplay, Mandate, TokenisedInstrument } from '../../domain/instrument.js';

/**
 * The sandbox provider's hosted forms (README, "The sandbox provider"): a merchant opens a session,
 * sends its customer to `/hosted/{sessionId}`, where the customer types a card or a bank account on
 * the provider's own page; the provider checks it, keeps it as a token, and sends the customer back
 * to the merchant with a one-time reference the merchant exchanges for the token. The merchant never
 * sees a card number or an IBAN.
 */

/** Test card numbers and what payments with their tokens do (any other valid number settles). */
const TEST_CARDS = new Map<string, string>([
  ['4000000000000002', 'card_declined'],
  ['4000000000009995', 'card_insufficient_funds'],
  ['4000000000000259', 'card_chargeback'],
]);
/** Test IBANs whose mandate the bank takes a while to confirm: PENDING, then ACTIVE (by callback). */
const SLOW_MANDATE_IBANS = new Set(['NL91ABNA0417164300']);
/** Test IBANs whose mandate stays PENDING until the bank is told to confirm it (`POST /mandates/{ref}/confirm`). */
const HELD_MANDATE_IBANS = new Set(['FR7630006000011234567890189']);
/** Test IBANs and what debits of their tokens do (any other valid IBAN settles). */
const TEST_IBANS = new Map<string, string>([
  ['GB33BUKB20201555555555', 'bank_insufficient_funds'],
  ['DE75512108001245126199', 'bank_returned'],
  ['BE68539007547034', 'bank_held'],
]);
const SESSION_TTL_MS = 30 * 60_000;

interface Session {
  id: string;
  apiKey: string;
  paymentMethod: TokenisedInstrument['paymentMethod'];
  returnUrl: string;
  /** Where a mandate's later news goes (signed like payment callbacks). */
  callbackUrl?: string;
  expiresAt: number;
  /** Set once the customer submitted valid details: the reference, exchanged at most once. */
  exchangeRef?: string;
  token?: string;
  exchanged?: boolean;
}

interface TokenRecord {
  token: string;
  apiKey: string;
  paymentMethod: TokenisedInstrument['paymentMethod'];
  /** The test instrument whose behaviour payments with this token have (outcomes.ts). */
  behaves: string;
  display: InstrumentDisplay;
  mandate?: Mandate;
  callbackUrl?: string;
}

const sessionRequestSchema = z.strictObject({
  paymentMethod: z.enum(['CARD', 'BANK_DEBIT', 'BANK_TRANSFER']),
  returnUrl: z.url({ protocol: /^https?$/ }).max(2048),
  locale: z.string().max(35).optional(),
  callbackUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
});

export class TokenVault {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'tokens.jsonl');
    if (existsSync(this.file)) {
      for (const line of readFileSync(this.file, 'utf8').split('\n')) {
        if (line.trim()) {
          const record = JSON.parse(line) as TokenRecord;
          this.tokens.set(record.token, record);
        }
      }
    }
  }

  add(record: TokenRecord): void {
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    this.tokens.set(record.token, record);
  }

  get(token: string): TokenRecord | undefined {
    return this.tokens.get(token);
  }

  /** The test instrument a payment's instrument stands for: a token of this merchant's, or the instrument itself. */
  behaviourOf(apiKey: string, instrument: string): string {
    if (!instrument.startsWith('tok_')) return instrument;
    const record = this.tokens.get(instrument);
    if (!record || record.apiKey !== apiKey) return 'invalid_token';
    // A debit needs the mandate in force: the bank refuses one under a mandate not (or no longer) active.
    if (record.mandate && record.mandate.status !== 'ACTIVE') return 'mandate_not_active';
    return record.behaves;
  }

  /** The token whose mandate has this reference, whichever merchant's (for the bank's test switch). */
  withMandate(mandateRef: string): TokenRecord | undefined {
    for (const record of this.tokens.values()) if (record.mandate?.mandateRef === mandateRef) return record;
    return undefined;
  }

  /** A merchant's token whose mandate has this reference. */
  byMandate(apiKey: string, mandateRef: string): TokenRecord | undefined {
    for (const record of this.tokens.values())
      if (record.apiKey === apiKey && record.mandate?.mandateRef === mandateRef) return record;
    return undefined;
  }
}

export interface HostedFormOptions {
  merchantOf: (req: Request) => string;
  /** How long the bank takes to confirm a slow mandate. */
  mandateMs: number;
  /** Sends a signed callback to the merchant (the server's own, retried). */
  callBack: (id: string, url: string, apiKey: string, message: object, status: string) => Promise<void>;
  runInBackground: (task: Promise<void>, what: string) => void;
  sleep: (ms: number) => Promise<void>;
}

export function addHostedFormRoutes(
  app: Express,
  vault: TokenVault,
  { merchantOf, mandateMs, callBack, runInBackground, sleep }: HostedFormOptions,
): void {
  const sessions = new Map<string, Session>();

  /** A mandate's new status, kept and told to the merchant. */
  async function mandateMoves(record: TokenRecord, status: Mandate['status']): Promise<void> {
    const moved: TokenRecord = { ...record, mandate: { ...record.mandate!, status } };
    vault.add(moved);
    if (moved.callbackUrl)
      await callBack(
        moved.mandate!.mandateRef,
        moved.callbackUrl,
        moved.apiKey,
        { object: 'mandate', mandateRef: moved.mandate!.mandateRef, status },
        status,
      );
  }

  // The customer's bank, told by the customer, or the merchant itself: the mandate is cancelled.
  app.post('/v1/mandates/:ref/cancel', (req, res) => {
    const record = vault.byMandate(merchantOf(req), req.params.ref);
    if (!record) return void res.status(404).json({ error: 'not_found' });
    runInBackground(mandateMoves(record, 'CANCELLED'), `cancelling mandate ${req.params.ref}`);
    res.status(202).json({ mandateRef: req.params.ref, status: 'CANCELLED' });
  });

  // A test switch: the bank confirms a held mandate now, so that a test can see a debit wait for it.
  app.post('/mandates/:ref/confirm', (req, res) => {
    const record = vault.withMandate(req.params.ref);
    if (!record) return void res.status(404).json({ error: 'not_found' });
    if (record.mandate!.status !== 'PENDING') return void res.status(409).json({ error: 'not_pending' });
    runInBackground(mandateMoves(record, 'ACTIVE'), `confirming mandate ${req.params.ref}`);
    res.status(202).json({ mandateRef: req.params.ref, status: 'ACTIVE' });
  });

  app.post('/v1/hosted-sessions', (req, res) => {
    const parsed = sessionRequestSchema.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: 'invalid_request' });
    for (const [id, old] of sessions) if (old.expiresAt < Date.now()) sessions.delete(id);
    const session: Session = {
      id: sandboxId('hs_', 24),
      apiKey: merchantOf(req),
      paymentMethod: parsed.data.paymentMethod,
      returnUrl: parsed.data.returnUrl,
      ...(parsed.data.callbackUrl ? { callbackUrl: parsed.data.callbackUrl } : {}),
      expiresAt: Date.now() + SESSION_TTL_MS,
    };
    sessions.set(session.id, session);
    res.status(201).json({
      id: session.id,
      url: `${req.protocol}://${req.get('host')}/hosted/${session.id}`,
      expiresAt: new Date(session.expiresAt).toISOString(),
    });
  });

  app.post('/v1/hosted-sessions/:id/exchange', (req, res) => {
    const session = sessions.get(req.params.id);
    const ref = (req.body as { ref?: unknown } | undefined)?.ref;
    if (!session || session.apiKey !== merchantOf(req) || typeof ref !== 'string' || ref !== session.exchangeRef)
      return void res.status(404).json({ error: 'not_found' });
    if (session.exchanged) return void res.status(409).json({ error: 'already_exchanged' });
    session.exchanged = true;
    const record = vault.get(session.token!)!;
    // The mandate as it was signed: its later news comes by callback.
    const answer: TokenisedInstrument = {
      token: record.token,
      paymentMethod: record.paymentMethod,
      display: record.display,
      ...(record.mandate ? { mandate: record.mandate } : {}),
    };
    res.json(answer);
  });

  const page = (res: Response, status: number, html: string, returnUrl?: string) => {
    res
      .status(status)
      .set({
        'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${returnUrl ? new URL(returnUrl).origin : ''}; frame-ancestors 'none'; base-uri 'none'`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      })
      .type('html')
      .send(html);
  };

  app.get('/hosted/:id', (req, res) => {
    const session = openSession(req.params.id);
    if (!session) return page(res, 404, notice('This form has expired. Go back to the merchant and start again.'));
    page(res, 200, form(session), session.returnUrl);
  });

  app.post('/hosted/:id', express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 20 }), (req, res) => {
    const session = openSession(req.params.id);
    if (!session) return page(res, 404, notice('This form has expired. Go back to the merchant and start again.'));
    const fields = (req.body ?? {}) as Record<string, unknown>;
    const text = (name: string) => {
      const value = fields[name];
      return typeof value === 'string' ? value.trim() : '';
    };
    const tokenised =
      session.paymentMethod === 'CARD'
        ? cardFrom(text('number'), text('expiry'), text('cvc'), text('name'))
        : bankAccountFrom(
            text('iban'),
            text('name'),
            session.paymentMethod === 'BANK_DEBIT' ? fields.consent === 'yes' : true,
          );
    if ('error' in tokenised) return page(res, 422, form(session, tokenised.error), session.returnUrl);
    const token = sandboxId('tok_', 24);
    const iban = electronicFormatIBAN(text('iban')) ?? '';
    const slow = SLOW_MANDATE_IBANS.has(iban);
    const mandate: Mandate | undefined =
      session.paymentMethod === 'BANK_DEBIT'
        ? {
            mandateRef: `MDT-${randomBytes(6).toString('hex').toUpperCase()}`,
            status: slow || HELD_MANDATE_IBANS.has(iban) ? 'PENDING' : 'ACTIVE',
            signedAt: new Date().toISOString(),
          }
        : undefined;
    const record: TokenRecord = {
      token,
      apiKey: session.apiKey,
      paymentMethod: session.paymentMethod,
      behaves: tokenised.behaves,
      display: tokenised.display,
      ...(mandate ? { mandate } : {}),
      ...(session.callbackUrl ? { callbackUrl: session.callbackUrl } : {}),
    };
    vault.add(record);
    if (mandate && slow)
      runInBackground(
        sleep(mandateMs).then(() => mandateMoves(record, 'ACTIVE')),
        `confirming mandate ${mandate.mandateRef}`,
      );
    session.token = token;
    session.exchangeRef = sandboxId('ref_', 32);
    const back = new URL(session.returnUrl);
    back.searchParams.set('session', session.id);
    back.searchParams.set('ref', session.exchangeRef);
    res.redirect(303, back.toString());
  });

  function openSession(id: string): Session | undefined {
    const session = sessions.get(id);
    return session && session.expiresAt > Date.now() && !session.exchangeRef ? session : undefined;
  }
}

type Checked = { behaves: string; display: InstrumentDisplay } | { error: string };

function cardFrom(number: string, expiry: string, cvc: string, name: string): Checked {
  const digits = number.replace(/[ -]/g, '');
  if (!/^\d{12,19}$/.test(digits) || !passesLuhn(digits)) return { error: 'That card number is not valid.' };
  const [, month, year] = /^(\d{2}) ?\/ ?(\d{2})$/.exec(expiry) ?? [];
  const expMonth = Number(month);
  const expYear = 2000 + Number(year);
  const now = new Date();
  if (!month || expMonth < 1 || expMonth > 12) return { error: 'Give the expiry date as MM/YY.' };
  if (expYear < now.getUTCFullYear() || (expYear === now.getUTCFullYear() && expMonth < now.getUTCMonth() + 1))
    return { error: 'That card has expired.' };
  if (!/^\d{3,4}$/.test(cvc)) return { error: 'The security code is the 3 or 4 digits on the card.' };
  return {
    behaves: TEST_CARDS.get(digits) ?? 'card_ok',
    display: {
      brand: brandOf(digits),
      last4: digits.slice(-4),
      expMonth,
      expYear,
      ...(name ? { holderName: name } : {}),
    },
  };
}

function brandOf(digits: string): string {
  if (digits.startsWith('4')) return 'visa';
  if (/^(5[1-5]|2[2-7])/.test(digits)) return 'mastercard';
  if (/^3[47]/.test(digits)) return 'amex';
  return 'card';
}

function bankAccountFrom(iban: string, name: string, consented: boolean): Checked {
  const electronic = electronicFormatIBAN(iban) ?? '';
  if (!isValidIBAN(electronic)) return { error: 'That IBAN is not valid: check it against your bank statement.' };
  if (!name) return { error: 'Give the name of the account holder.' };
  if (!consented) return { error: 'Tick the box to authorise the debits.' };
  return {
    behaves: TEST_IBANS.get(electronic) ?? 'bank_ok',
    display: { maskedIban: `${electronic.slice(0, 4)} •••• ${electronic.slice(-4)}`, holderName: name },
  };
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1rem;background:#f4f4f7;color:#111}
main{max-width:28rem;margin:0 auto;background:#fff;padding:1.25rem;border-radius:8px}
label{display:block;margin-top:1rem;font-weight:600}input[type=text]{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.6rem;margin-top:.25rem;border:1px solid #666;border-radius:4px}
button{margin-top:1.5rem;width:100%;font-size:1.1rem;padding:.75rem;background:#1a3c8f;color:#fff;border:0;border-radius:4px}
.error{background:#fde8e8;color:#8a1010;padding:.75rem;border-radius:4px}.consent{display:flex;gap:.5rem;font-weight:400}`;

function shell(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title><style>${STYLE}</style></head><body><main><h1>${title}</h1>${body}</main></body></html>`;
}

function notice(message: string): string {
  return shell('Sandbox payments', `<p>${message}</p>`);
}

function form(session: Session, error?: string): string {
  const alert = error ? `<p class="error" role="alert">${error}</p>` : '';
  const fields =
    session.paymentMethod === 'CARD'
      ? `<label for="number">Card number</label><input type="text" id="number" name="number" inputmode="numeric" autocomplete="cc-number" required>
<label for="expiry">Expiry date (MM/YY)</label><input type="text" id="expiry" name="expiry" inputmode="numeric" autocomplete="cc-exp" placeholder="MM/YY" required>
<label for="cvc">Security code</label><input type="text" id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" required>
<label for="name">Name on the card</label><input type="text" id="name" name="name" autocomplete="cc-name">`
      : `<label for="iban">IBAN</label><input type="text" id="iban" name="iban" autocomplete="off" required>
<label for="name">Account holder</label><input type="text" id="name" name="name" autocomplete="name" required>${
          session.paymentMethod === 'BANK_DEBIT'
            ? `<label class="consent"><input type="checkbox" name="consent" value="yes" required> I authorise Sandbox Payments to debit this account for payments the merchant asks, under a SEPA-style mandate.</label>`
            : ''
        }`;
  const title = session.paymentMethod === 'CARD' ? 'Enter your card' : 'Enter your bank account';
  return shell(
    title,
    `${alert}<p>Sandbox Payments keeps these details; the merchant never sees them.</p><form method="post" action="/hosted/${session.id}">${fields}<button type="submit">Continue</button></form>`,
  );
}
