import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import { z } from 'zod';
import { PAYMENT_NOT_FOUND } from '../app-connector.js';
import { SANDBOX_SIGNATURE_HEADER, signSandboxCallback } from './callback-signature.js';
import {
  idempotencyScope,
  isPayment,
  Ledger,
  type LedgerRecord,
  type PaymentRecord,
  type PaymentStatus,
  type RefundRecord,
  type ReversalRecord,
  type SandboxPaymentRequest,
  type SandboxRefundRequest,
} from './ledger.js';
import { addHostedFormRoutes, TokenVault } from './hosted-forms.js';
import { bankBehaviour, cardBehaviour, reversalOf, voucherPayout, type Resolution } from './outcomes.js';
import { VOUCHER_CATALOG } from '../../domain/voucher-catalog.js';

export interface SandboxOptions {
  /** Holds the ledger; starting again on the same directory remembers every payment and idempotency key. */
  dataDir: string;
  /** How long a bank payment stays PENDING before it resolves and calls back. */
  settleMs?: number;
  /** How long the answer to a `card_timeout` payment is held. */
  hangMs?: number;
  /** How long after it settled a `bank_returned` payment is returned, and a `card_chargeback` one charged back. */
  returnMs?: number;
  /** How long every API call (`/v1/…`) takes to be answered: a real provider's latency (default none). */
  latencyMs?: number;
  log?: (line: string) => void;
}

export interface SandboxApp {
  app: Express;
  /**
   * Stops pending settlements and callback deliveries, answers held requests at once, and closes the
   * ledger. Stop the HTTP server from taking connections first. Settlements still due run again
   * when the provider starts on the same directory.
   */
  close(): Promise<void>;
}

const API_KEY_HEADER = /^Bearer (sk_test_[A-Za-z0-9_]{8,})$/;
const SUPPORTED_PAYMENTS = new Set([
  'SANDBOX_CARD/CARD/DEBIT',
  'SANDBOX_BANK/BANK_DEBIT/DEBIT',
  'SANDBOX_BANK/BANK_TRANSFER/CREDIT',
  'SANDBOX_VOUCHERS/VOUCHER/CREDIT',
]);
/**
 * Waits between the nine attempts to deliver a callback: about two minutes in all, longer than a
 * worker's restart (the API answers 503 while no worker can say which refund a callback is for).
 * Real providers go on for hours or days.
 */
const CALLBACK_BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15_000, 30_000, 60_000];
const CALLBACK_TIMEOUT_MS = 10_000;

const text = z.string().min(1).max(255);
const paymentRequestSchema = z.strictObject({
  appId: z.enum(['SANDBOX_CARD', 'SANDBOX_BANK', 'SANDBOX_VOUCHERS']),
  paymentMethod: z.enum(['CARD', 'BANK_DEBIT', 'BANK_TRANSFER', 'VOUCHER']),
  direction: z.enum(['DEBIT', 'CREDIT']),
  amountMinor: z.string().regex(/^\d+$/),
  currency: z.string().regex(/^[A-Z]{3}$/),
  country: z.string().regex(/^[A-Z]{2}$/),
  instrument: text,
  reference: z.strictObject({ tenantId: text, orderRef: text, instructionRef: text }),
  callbackUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
}) satisfies z.ZodType<SandboxPaymentRequest>;

const refundRequestSchema = z.strictObject({
  paymentId: text,
  amountMinor: z.string().regex(/^[1-9]\d{0,18}$/),
  currency: z.string().regex(/^[A-Z]{3}$/),
  reason: z.string().max(200).optional(),
  reference: z.strictObject({ tenantId: text, orderRef: text, instructionRef: text }),
  callbackUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
}) satisfies z.ZodType<SandboxRefundRequest>;

const ledgerFilterSchema = z.object({ tenantId: z.string().optional(), orderRef: z.string().optional() });
const ledgerQuerySchema = z.object({
  from: z.coerce.date(),
  to: z.coerce.date(),
  appId: z.string(),
  cursor: z
    .string()
    .regex(/^\d{1,9}$/)
    .optional(),
});
/** Small enough that a page stays well inside what a merchant reads of one answer. */
const LEDGER_PAGE = 100;

/** A payment as the merchant's ledger shows it. */
interface LedgerEntry {
  providerRef: string;
  direction: 'DEBIT' | 'CREDIT';
  amountMinor: string;
  currency: string;
  status: PaymentStatus;
  createdAt: string;
}

function ledgerEntryOf(payment: PaymentRecord): LedgerEntry {
  return {
    providerRef: payment.id,
    direction: payment.request.direction,
    amountMinor: payment.request.amountMinor,
    currency: payment.request.currency,
    status: payment.status,
    createdAt: payment.createdAt,
  };
}

const misreportSchema = z.union([
  z.object({
    providerRef: z.string(),
    amountMinor: z.string().regex(/^\d+$/).optional(),
    currency: z.string().length(3).optional(),
    status: z.enum(['PENDING', 'SETTLED', 'DECLINED', 'RETURNED', 'CHARGED_BACK']).optional(),
    omit: z.boolean().optional(),
  }),
  z.object({
    phantom: z.object({
      apiKey: z.string(),
      appId: z.string(),
      direction: z.enum(['DEBIT', 'CREDIT']),
      amountMinor: z.string().regex(/^\d+$/),
      currency: z.string().length(3),
      status: z.enum(['PENDING', 'SETTLED', 'DECLINED', 'RETURNED', 'CHARGED_BACK']),
      createdAt: z.iso.datetime(),
    }),
  }),
]);

/**
 * A fake payment service provider that behaves like a real one over HTTP: merchants authenticate
 * with an API key, idempotency keys are honoured across restarts (the ledger is on disk), card
 * payments answer at once, bank payments resolve later and call back with a signed request, and
 * voucher payouts issue a code. Test instruments choose the outcome (outcomes.ts).
 */
export function createSandboxApp({
  dataDir,
  settleMs = 2000,
  hangMs = 30_000,
  returnMs = 10_000,
  latencyMs = 0,
  log = (line) => console.log(line),
}: SandboxOptions): SandboxApp {
  const ledger = Ledger.open(dataDir);
  const vault = new TokenVault(dataDir);
  const stopping = new AbortController();
  const background = new Set<Promise<void>>();
  // Idempotency keys of card_flaky payments whose first call has failed; memory is enough for a test outcome.
  const failedOnce = new Set<string>();

  const app = express();
  app.disable('x-powered-by');
  // One line per request, as a provider's access log: what was asked and answered, never its credentials.
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () =>
      log(`${req.method} ${req.originalUrl} ${res.statusCode} ${Math.round(performance.now() - started)} ms`),
    );
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // For tests and operators: what the provider recorded, without credentials.
  app.get('/ledger', (req, res) => {
    const filter = ledgerFilterSchema.safeParse(req.query);
    if (!filter.success) return refuse(res, 400, 'invalid_request');
    const { tenantId, orderRef } = filter.data;
    const items = ledger
      .all()
      .map((record) => presentLedgerItem(record, ledger))
      .filter(
        (item) =>
          (tenantId === undefined || item.tenantId === tenantId) &&
          (orderRef === undefined || item.orderRef === orderRef),
      );
    res.json({ items });
  });

  // A test switch: how long every API call takes to be answered from now on (benchmarks compare a
  // fast provider with a slow one in one run).
  let latency = latencyMs;
  app.put('/latency', express.json(), (req, res) => {
    const body = z.strictObject({ ms: z.number().int().min(0).max(60_000) }).safeParse(req.body);
    if (!body.success) return refuse(res, 400, 'invalid_request');
    latency = body.data.ms;
    res.status(204).end();
  });

  // A test switch: the bank settles a `bank_held` payment, or a refund of one, now, so that a test
  // can see it while it is PENDING.
  const held = new Map<string, () => void>();
  const heldUntilSettled = (id: string) =>
    new Promise<void>((resolve, reject) => {
      held.set(id, resolve);
      stopping.signal.addEventListener('abort', () => reject(stopping.signal.reason as Error), { once: true });
    });
  app.post('/held/:id/settle', (req, res) => {
    const settle = held.get(req.params.id);
    if (!settle) return refuse(res, 404, 'not_held');
    held.delete(req.params.id);
    settle();
    res.status(202).json({ id: req.params.id });
  });

  // A test switch: the ledger the merchant reads (GET /v1/ledger) misreports a payment, leaves it
  // out, or shows one that never happened, so that reconciliation can be seen to notice. In memory only.
  const misreports = new Map<string, Partial<LedgerEntry> & { omit?: boolean }>();
  const phantoms: (LedgerEntry & { apiKey: string; appId: string })[] = [];
  app.post('/ledger/misreport', express.json(), (req, res) => {
    const body = misreportSchema.safeParse(req.body);
    if (!body.success) return refuse(res, 400, 'invalid_request');
    if ('phantom' in body.data) {
      const { apiKey, appId, ...entry } = body.data.phantom;
      phantoms.push({ ...entry, apiKey, appId, providerRef: `pay_phantom_${randomBytes(6).toString('hex')}` });
      return void res.status(201).json({ providerRef: phantoms.at(-1)!.providerRef });
    }
    const { providerRef, ...wrong } = body.data;
    misreports.set(providerRef, wrong);
    res.status(204).end();
  });

  app.use('/v1', (req, res, next) => {
    if (apiKeyOf(req) === undefined) return refuse(res, 401, 'invalid_api_key');
    if (latency > 0) setTimeout(next, latency);
    else next();
  });
  app.use('/v1', express.json());

  // The merchant's payments of one app made in [from, to), oldest first, a page at a time: what a
  // merchant reconciles its own records against.
  app.get('/v1/ledger', (req, res) => {
    const query = ledgerQuerySchema.safeParse(req.query);
    if (!query.success) return refuse(res, 400, 'invalid_request');
    const { from, to, appId, cursor } = query.data;
    const apiKey = merchantOf(req);
    const inPeriod = (createdAt: string) => createdAt >= from.toISOString() && createdAt < to.toISOString();
    const entries = [
      ...ledger
        .list()
        .filter((p) => p.apiKey === apiKey && p.request.appId === appId && inPeriod(p.createdAt))
        .flatMap((p): LedgerEntry[] => {
          const wrong = misreports.get(p.id);
          if (wrong?.omit) return [];
          const { omit: _omit, ...fields } = wrong ?? {};
          return [{ ...ledgerEntryOf(p), ...fields }];
        }),
      ...phantoms
        .filter((p) => p.apiKey === apiKey && p.appId === appId && inPeriod(p.createdAt))
        .map(({ apiKey: _key, appId: _app, ...entry }) => entry),
    ];
    const start = cursor ? Number(cursor) : 0;
    const items = entries.slice(start, start + LEDGER_PAGE);
    res.json({ items, nextCursor: start + LEDGER_PAGE < entries.length ? String(start + LEDGER_PAGE) : null });
  });

  app.get('/v1/vouchers', (_req, res) => {
    res.json({ items: VOUCHER_CATALOG });
  });

  // What a client asks after a call that went unanswered: did the payment happen under this key?
  app.get('/v1/payments', (req, res) => {
    const idempotencyKey = req.query.idempotencyKey;
    if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 255)
      return refuse(res, 400, 'idempotency_key_required');
    const payment = ledger.findByIdempotencyKey(merchantOf(req), idempotencyKey);
    // Said in so many words: a bare 404 could as well be a route this provider does not have.
    if (!payment) return refuse(res, 404, PAYMENT_NOT_FOUND);
    res.json(presentPayment(payment));
  });

  app.get('/v1/payments/:id', (req, res) => {
    const payment = ledger.get(req.params.id);
    // Another merchant's payment is as absent as one that never existed.
    if (!payment || payment.apiKey !== merchantOf(req)) return refuse(res, 404, 'not_found');
    res.json(presentPayment(payment));
  });

  app.post('/v1/payments', async (req, res) => {
    const apiKey = merchantOf(req);
    const idempotencyKey = req.header('idempotency-key');
    if (!idempotencyKey || idempotencyKey.length > 255) return refuse(res, 400, 'idempotency_key_required');
    const parsed = paymentRequestSchema.safeParse(req.body);
    if (!parsed.success) return refuse(res, 400, 'invalid_request');
    const request = parsed.data;
    if (!SUPPORTED_PAYMENTS.has(`${request.appId}/${request.paymentMethod}/${request.direction}`))
      return refuse(res, 400, 'unsupported_payment');
    if (request.appId === 'SANDBOX_BANK' && request.callbackUrl === undefined)
      return refuse(res, 400, 'invalid_request');

    // From here to the ledger append nothing awaits, so two calls with one key cannot both record.
    const existing = ledger.findByIdempotencyKey(apiKey, idempotencyKey);
    if (existing) {
      if (!samePayment(existing.request, request)) return refuse(res, 422, 'idempotency_key_reused');
      res.status(200).json(presentPayment(existing));
      return;
    }

    if (request.appId === 'SANDBOX_BANK') {
      const payment = record(apiKey, idempotencyKey, request, { status: 'PENDING' });
      runInBackground(settleLater(payment), `settling ${payment.id}`);
      res.status(201).json(presentPayment(payment));
      return;
    }
    if (request.appId === 'SANDBOX_VOUCHERS') {
      const payment = record(
        apiKey,
        idempotencyKey,
        request,
        voucherPayout(request.instrument, request.currency, request.amountMinor),
      );
      res.status(201).json(presentPayment(payment));
      return;
    }

    const behaviour = cardBehaviour(vault.behaviourOf(apiKey, request.instrument));
    const scope = idempotencyScope(apiKey, idempotencyKey);
    if (behaviour.kind === 'unavailable' || (behaviour.kind === 'fail-first-call' && !failedOnce.has(scope))) {
      if (behaviour.kind === 'fail-first-call') failedOnce.add(scope);
      return refuse(res, 503, 'temporarily_unavailable');
    }
    const payment = record(
      apiKey,
      idempotencyKey,
      request,
      behaviour.kind === 'answer' ? behaviour.resolution : { status: 'SETTLED' },
    );
    // Recorded now: a retry with this key replays the payment, so the flaky key need not be remembered.
    failedOnce.delete(scope);
    if (payment.status === 'SETTLED') takeBackLater(payment);
    if (behaviour.kind === 'settle-then-hang') {
      // The money has moved; a client that gives up meanwhile learns so from its retry. Closing answers at once.
      await sleep(hangMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
    res.status(201).json(presentPayment(payment));
  });

  // Refunds of a settled payment: cards at once, bank debits later (with a callback).
  app.post('/v1/refunds', (req, res) => {
    const apiKey = merchantOf(req);
    const idempotencyKey = req.header('idempotency-key');
    if (!idempotencyKey || idempotencyKey.length > 255) return refuse(res, 400, 'idempotency_key_required');
    const parsed = refundRequestSchema.safeParse(req.body);
    if (!parsed.success) return refuse(res, 400, 'invalid_request');
    const request = parsed.data;
    // From here to the ledger append nothing awaits, so two calls with one key cannot both record.
    const existing = ledger.findRefundByIdempotencyKey(apiKey, idempotencyKey);
    if (existing) {
      if (canonicalJson(withoutCallback(existing.request)) !== canonicalJson(withoutCallback(request)))
        return refuse(res, 422, 'idempotency_key_reused');
      res.status(200).json(presentRefund(existing));
      return;
    }
    const payment = ledger.get(request.paymentId);
    if (!payment || payment.apiKey !== apiKey) return refuse(res, 404, 'payment_not_found');
    const failure = refundFailure(payment, request);
    const bank = payment.request.appId === 'SANDBOX_BANK';
    const refund = recordRefund(
      apiKey,
      idempotencyKey,
      request,
      failure ? 'FAILED' : bank ? 'PENDING' : 'SUCCEEDED',
      failure,
    );
    if (refund.status === 'PENDING') runInBackground(refundLater(refund), `refunding ${refund.id}`);
    res.status(201).json(presentRefund(refund));
  });

  app.get('/v1/refunds/:id', (req, res) => {
    const refund = ledger.getRefund(req.params.id);
    if (!refund || refund.apiKey !== merchantOf(req)) return refuse(res, 404, 'not_found');
    res.json(presentRefund(refund));
  });

  addHostedFormRoutes(app, vault, {
    merchantOf,
    mandateMs: settleMs,
    callBack: (id, url, apiKey, message, status) => deliverCallback(id, url, apiKey, message, status),
    runInBackground: (task, what) => runInBackground(task, what),
    sleep: (ms) => sleep(ms, undefined, { signal: stopping.signal }),
  });

  app.use((_req, res) => refuse(res, 404, 'not_found'));

  const answerErrors: ErrorRequestHandler = (error, _req, res, _next) => {
    // express.json() refuses unreadable bodies with a 4xx status on the error.
    const status = (error as { status?: unknown } | undefined)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) return refuse(res, status, 'invalid_request');
    log(`sandbox request failed: ${describe(error)}`);
    refuse(res, 500, 'internal_error');
  };
  app.use(answerErrors);

  // Bank payments that were pending when the provider last stopped resolve (and call back) now or when due.
  for (const payment of ledger.list()) {
    if (payment.status === 'PENDING') runInBackground(settleLater(payment), `settling ${payment.id}`);
    if (payment.status === 'SETTLED') takeBackLater(payment);
  }
  for (const record of ledger.all()) {
    if (record.kind === 'REFUND' && record.status === 'PENDING')
      runInBackground(refundLater(record), `refunding ${record.id}`);
  }

  /** Why a refund cannot be made, or undefined when it can. */
  function refundFailure(payment: PaymentRecord, request: SandboxRefundRequest): string | undefined {
    if (payment.status === 'RETURNED' || payment.status === 'CHARGED_BACK') return 'payment_returned';
    if (payment.status !== 'SETTLED' || payment.request.direction !== 'DEBIT') return 'payment_not_refundable';
    if (request.currency !== payment.request.currency) return 'currency_mismatch';
    const refunded = ledger
      .refundsOf(payment.id)
      .filter((r) => r.status !== 'FAILED')
      .reduce((sum, r) => sum + BigInt(r.request.amountMinor), 0n);
    if (refunded + BigInt(request.amountMinor) > BigInt(payment.request.amountMinor)) return 'amount_exceeds_payment';
    return undefined;
  }

  function recordRefund(
    apiKey: string,
    idempotencyKey: string,
    request: SandboxRefundRequest,
    status: RefundRecord['status'],
    failureCode: string | undefined,
  ): RefundRecord {
    const now = new Date().toISOString();
    const refund: RefundRecord = {
      kind: 'REFUND',
      id: `sbr_${randomUUID()}`,
      apiKey,
      idempotencyKey,
      request,
      status,
      ...(failureCode ? { failureCode } : {}),
      createdAt: now,
      updatedAt: now,
    };
    ledger.append(refund);
    return refund;
  }

  /** A bank refund goes through after the settlement delay, unless the payment was taken back meanwhile. */
  async function refundLater(refund: RefundRecord): Promise<void> {
    const dueInMs = Date.parse(refund.createdAt) + settleMs - Date.now();
    await sleep(Math.max(0, dueInMs), undefined, { signal: stopping.signal });
    const paid = ledger.get(refund.request.paymentId);
    if (paid && bankBehaviour(vault.behaviourOf(paid.apiKey, paid.request.instrument)).held)
      await heldUntilSettled(refund.id);
    const payment = ledger.get(refund.request.paymentId);
    const returned = payment?.status === 'RETURNED' || payment?.status === 'CHARGED_BACK';
    const done: RefundRecord = {
      ...refund,
      status: returned ? 'FAILED' : 'SUCCEEDED',
      ...(returned ? { failureCode: 'payment_returned' } : {}),
      updatedAt: new Date().toISOString(),
    };
    ledger.append(done);
    if (done.request.callbackUrl)
      await deliverCallback(done.id, done.request.callbackUrl, done.apiKey, presentRefundCallback(done), done.status);
  }

  /** Payments whose instrument says so are returned (or charged back) a while after they settled, and the merchant told. */
  function takeBackLater(payment: PaymentRecord): void {
    const reversal = reversalOf(vault.behaviourOf(payment.apiKey, payment.request.instrument));
    if (!reversal || payment.request.direction !== 'DEBIT' || ledger.reversalOf(payment.id)) return;
    runInBackground(
      (async () => {
        const dueInMs = Date.parse(payment.updatedAt) + returnMs - Date.now();
        await sleep(Math.max(0, dueInMs), undefined, { signal: stopping.signal });
        const current = ledger.get(payment.id);
        if (!current || current.status !== 'SETTLED') return;
        const refunded = ledger
          .refundsOf(payment.id)
          .filter((r) => r.status === 'SUCCEEDED')
          .reduce((sum, r) => sum + BigInt(r.request.amountMinor), 0n);
        const now = new Date().toISOString();
        const record: ReversalRecord = {
          kind: reversal.kind,
          id: `sbx_${reversal.kind === 'RETURN' ? 'ret' : 'cb'}_${randomUUID()}`,
          apiKey: payment.apiKey,
          idempotencyKey: `reversal:${payment.id}`,
          paymentId: payment.id,
          amountMinor: (BigInt(payment.request.amountMinor) - refunded).toString(),
          code: reversal.code,
          createdAt: now,
          updatedAt: now,
        };
        ledger.append(record);
        const takenBack: PaymentRecord = {
          ...current,
          status: reversal.kind === 'RETURN' ? 'RETURNED' : 'CHARGED_BACK',
          returnCode: reversal.code,
          returnedAmountMinor: record.amountMinor,
          updatedAt: now,
        };
        ledger.append(takenBack);
        const url = takenBack.request.callbackUrl;
        if (url)
          await deliverCallback(takenBack.id, url, takenBack.apiKey, presentCallback(takenBack), takenBack.status);
      })(),
      `taking back ${payment.id}`,
    );
  }

  function record(
    apiKey: string,
    idempotencyKey: string,
    request: SandboxPaymentRequest,
    state: Resolution | { status: 'PENDING' },
  ): PaymentRecord {
    const now = new Date().toISOString();
    const payment: PaymentRecord = {
      id: `sbx_${randomUUID()}`,
      apiKey,
      idempotencyKey,
      request,
      ...state,
      createdAt: now,
      updatedAt: now,
    };
    ledger.append(payment);
    return payment;
  }

  async function settleLater(payment: PaymentRecord): Promise<void> {
    const dueInMs = Date.parse(payment.createdAt) + settleMs - Date.now();
    await sleep(Math.max(0, dueInMs), undefined, { signal: stopping.signal });
    const { resolution, callback, held } = bankBehaviour(vault.behaviourOf(payment.apiKey, payment.request.instrument));
    if (held) await heldUntilSettled(payment.id);
    const resolved: PaymentRecord = { ...payment, ...resolution, updatedAt: new Date().toISOString() };
    ledger.append(resolved);
    const url = resolved.request.callbackUrl;
    if (callback && url)
      await deliverCallback(resolved.id, url, resolved.apiKey, presentCallback(resolved), resolved.status);
    if (resolved.status === 'SETTLED') takeBackLater(resolved);
  }

  async function deliverCallback(
    id: string,
    url: string,
    apiKey: string,
    message: object,
    status: string,
  ): Promise<void> {
    const body = JSON.stringify(message);
    const attempts = CALLBACK_BACKOFF_MS.length + 1;
    for (let attempt = 1; ; attempt += 1) {
      const failure = await postCallback(url, apiKey, body);
      if (failure === undefined) return log(`callback for ${id} (${status}) delivered to ${url}`);
      const givingUp = attempt === attempts;
      log(
        `callback for ${id} to ${url} failed (attempt ${attempt} of ${attempts}${givingUp ? ', giving up' : ''}): ${failure}`,
      );
      if (givingUp) return;
      await sleep(CALLBACK_BACKOFF_MS[attempt - 1], undefined, { signal: stopping.signal });
    }
  }

  /** One delivery attempt, signed afresh so that a late retry is still within the receiver's tolerance. */
  async function postCallback(url: string, apiKey: string, body: string): Promise<string | undefined> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SANDBOX_SIGNATURE_HEADER]: signSandboxCallback(apiKey, body) },
        body,
        // A redirect is a failed delivery, not an invitation to post the payment elsewhere.
        redirect: 'manual',
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(CALLBACK_TIMEOUT_MS)]),
      });
      await response.body?.cancel();
      return response.ok ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      if (stopping.signal.aborted) throw error;
      return describe(error);
    }
  }

  /** Settlements and deliveries outlive the request that started them; close() waits for them to stop. */
  function runInBackground(task: Promise<void>, what: string): void {
    const tracked: Promise<void> = task
      .catch((error: unknown) => {
        if (!stopping.signal.aborted) log(`${what} failed: ${describe(error)}`);
      })
      .finally(() => background.delete(tracked));
    background.add(tracked);
  }

  return {
    app,
    async close() {
      stopping.abort();
      await Promise.all(background);
      ledger.close();
    },
  };
}

/** The merchant's API key from `Authorization: Bearer sk_test_…`; it names the merchant's account. */
function apiKeyOf(req: Request): string | undefined {
  return API_KEY_HEADER.exec(req.header('authorization') ?? '')?.[1];
}

/** The API key of a request the /v1 guard let in. */
function merchantOf(req: Request): string {
  const apiKey = apiKeyOf(req);
  if (apiKey === undefined) throw new Error('a /v1 route ran without an API key');
  return apiKey;
}

function refuse(res: Response, status: number, error: string): void {
  res.status(status).json({ error });
}

/** JSON with object keys sorted, so that a replay matches its first call whatever order its fields came in. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, field: unknown) =>
    field !== null && typeof field === 'object' && !Array.isArray(field)
      ? Object.fromEntries(Object.entries(field).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : field,
  );
}

/** Two requests under one key are the same payment if they differ at most in where to call back. */
function samePayment(a: SandboxPaymentRequest, b: SandboxPaymentRequest): boolean {
  return canonicalJson(withoutCallback(a)) === canonicalJson(withoutCallback(b));
}

function withoutCallback<T extends { callbackUrl?: string }>(request: T): Omit<T, 'callbackUrl'> {
  const { callbackUrl: _, ...rest } = request;
  return rest;
}

function presentRefund(refund: RefundRecord) {
  return {
    id: refund.id,
    object: 'refund',
    paymentId: refund.request.paymentId,
    status: refund.status,
    failureCode: refund.failureCode,
    amountMinor: refund.request.amountMinor,
    currency: refund.request.currency,
    createdAt: refund.createdAt,
    updatedAt: refund.updatedAt,
  };
}

function presentRefundCallback(refund: RefundRecord) {
  return {
    ...presentRefund(refund),
    idempotencyKey: refund.idempotencyKey,
    reference: refund.request.reference,
    occurredAt: refund.updatedAt,
  };
}

function presentPayment(payment: PaymentRecord) {
  const { request } = payment;
  return {
    id: payment.id,
    appId: request.appId,
    status: payment.status,
    declineCode: payment.declineCode,
    retryable: payment.retryable,
    voucherCode: payment.voucherCode,
    returnCode: payment.returnCode,
    returnedAmountMinor: payment.returnedAmountMinor,
    amountMinor: request.amountMinor,
    currency: request.currency,
    direction: request.direction,
    createdAt: payment.createdAt,
    updatedAt: payment.updatedAt,
  };
}

function presentCallback(payment: PaymentRecord) {
  const { request } = payment;
  return {
    id: payment.id,
    appId: request.appId,
    status: payment.status,
    declineCode: payment.declineCode,
    retryable: payment.retryable,
    returnCode: payment.returnCode,
    returnedAmountMinor: payment.returnedAmountMinor,
    idempotencyKey: payment.idempotencyKey,
    reference: request.reference,
    amountMinor: request.amountMinor,
    currency: request.currency,
    occurredAt: payment.updatedAt,
  };
}

/**
 * One line of the provider's ledger: a payment, or a refund, return or chargeback of one (which name
 * it by `paymentRef`). Amounts are positive; the kind says which way the money went.
 */
function presentLedgerItem(record: LedgerRecord, ledger: Ledger) {
  if (isPayment(record)) {
    const { request } = record;
    return {
      kind: 'PAYMENT' as const,
      idempotencyKey: record.idempotencyKey,
      providerRef: record.id,
      paymentRef: null,
      appId: request.appId,
      tenantId: request.reference.tenantId,
      orderRef: request.reference.orderRef,
      instructionRef: request.reference.instructionRef,
      direction: request.direction,
      amountMinor: request.amountMinor,
      currency: request.currency,
      status: record.status,
      code: record.returnCode ?? record.declineCode ?? null,
      // A test instrument's name or a token of the hosted forms: what the merchant sent, never a number.
      instrument: request.instrument,
      createdAt: record.createdAt,
    };
  }
  const paymentId = record.kind === 'REFUND' ? record.request.paymentId : record.paymentId;
  const payment = ledger.get(paymentId);
  return {
    kind: record.kind,
    idempotencyKey: record.idempotencyKey,
    providerRef: record.id,
    paymentRef: paymentId,
    appId: payment?.request.appId ?? null,
    tenantId: payment?.request.reference.tenantId ?? null,
    orderRef: payment?.request.reference.orderRef ?? null,
    instructionRef: payment?.request.reference.instructionRef ?? null,
    direction: payment?.request.direction ?? null,
    amountMinor: record.kind === 'REFUND' ? record.request.amountMinor : record.amountMinor,
    currency: payment?.request.currency ?? null,
    status: record.kind === 'REFUND' ? record.status : 'SUCCEEDED',
    code: record.kind === 'REFUND' ? (record.failureCode ?? null) : record.code,
    createdAt: record.createdAt,
  };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch reports "fetch failed" and keeps the reason (ECONNREFUSED…) in its cause.
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}
