import { randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { paymentDataIn, type PaymentData } from '../../domain/payment-data.js';
import { PaymentInstruction, PaymentOrder, Tenant } from '../../db/entities/index.js';
import { displayAmount } from '../../domain/money.js';
import { PAYMENT_METHODS, type PaymentMethod } from '../../domain/scheme.js';
import { dependencyOutage } from '../../api/http/dependency-outage.js';
import { transactionally } from '../../db/transactionally.js';
import { ApiError } from '../../api/http/problem.js';
import { Refusal } from '../../domain/refusal.js';
import { speaksOfUnknownOutcome } from '../../domain/payment-outcome.js';
import { isAtRest } from '../../domain/instruction-status.js';
import type { OrderService } from '../order-service.js';
import type { PaymentChoice } from '../payment-options.js';
import type { PaymentLinks } from '../payment-links.js';
import { CLOSED_DURING_CHANGE } from '../contract/refusals.js';
import { ClosedWorkflows } from './closed-workflows.js';
import { csrfTokenValid, issueCsrfToken } from './csrf.js';
import { notice, PAGE_CSS, paymentForm, statusPage, type PageInstruction, type PageOption } from './page-html.js';
import type { AppConnector } from '../../apps/app-connector.js';
import type { InstrumentStore } from '../../customers/instrument-store.js';
import type { Mandates } from '../mandates.js';
import type { InstallationCache } from '../activities/installation-cache.js';
import { Customer } from '../../db/entities/index.js';
import type { PaymentInstrument } from '../../db/entities/index.js';
import { mandateEnded, type InstrumentDisplay } from '../../domain/instrument.js';
import { ProviderRejectedError } from '../../domain/payment-outcome.js';
import { UUID_TEXT } from '../../domain/uuid.js';

export interface PayPageDeps {
  orm: MikroORM;
  orders: OrderService;
  logger: Logger;
  links: PaymentLinks;
  csrfKey: Buffer;
  rateLimit: RequestHandler;
  /** The apps' connectors: their providers' hosted forms take new cards and accounts. */
  apps: Map<string, AppConnector>;
  installations: InstallationCache;
  instruments: InstrumentStore;
  mandates: Mandates;
  /** Where the page is reached from outside, for the providers' forms to send customers back. */
  publicUrl: string;
}

/** How long the page waits, refreshing, for the call of a payment just taken to show. */
const PAYMENT_START_WAIT_MS = 60_000;

/** The provider's page takes the details: ours only says which app and method. */
const PROVIDER_NAMES: Record<string, string> = {
  SANDBOX_CARD: 'Sandbox Payments',
  SANDBOX_BANK: 'Sandbox Payments',
  HTTP_CONNECTOR: 'our payment provider',
};
const FORM_ID = /^[A-Za-z0-9_-]{16}$/;
/** An amount in minor units, as the form and the return address carry it. */
const AMOUNT_MINOR = /^[1-9]\d{0,18}$/;
/** Shown when a return from the provider's form paid nothing: the customer chooses again. */
const NOT_THROUGH = 'That did not go through. Choose how to pay again.';
/** Shown instead of the form while the last payment's outcome is unknown. */
const CONFIRMING_LAST_PAYMENT =
  'We are still confirming the last payment with the payment service, so no other can be made yet. Nothing is paid twice. Please check back later.';
/** Shown when the instruction's amount changed after the customer's page was opened: nothing was paid. */
const AMOUNT_CHANGED = 'The amount due has changed since this page was opened. Check it, then pay again.';
/** What the page says to a customer who typed their card number or IBAN into it. */
const TYPED_PAYMENT_DATA: Record<PaymentData, string> = {
  card_number:
    'Do not type a card number here: this page never takes one. A new card is entered on the payment provider’s own page.',
  bank_account:
    'Do not type a bank account number here: this page never takes one. A new account is entered on the payment provider’s own page.',
};
const LOWER_CASE_UUID = new RegExp(`^${UUID_TEXT}$`);

interface Loaded {
  order: PaymentOrder;
  instruction: PaymentInstruction;
  page: PageInstruction;
}

/**
 * The hosted payment page (`/pay/{token}`): server-rendered HTML for the one instruction its link
 * names. It pays through the same workflow update as `POST …/pay`. No script runs on it; the
 * Content-Security-Policy allows none, and only its own stylesheet.
 */
export function payPageRouter(deps: PayPageDeps): Router {
  const router = express.Router();
  const publicHttps = new URL(deps.publicUrl).protocol === 'https:';
  const closedWorkflows = new ClosedWorkflows((order) => deps.orders.workflowClosed(order));
  router.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      // The link's token is in the address: it must not leave in a Referer.
      referrerPolicy: { policy: 'no-referrer' },
    }),
  );
  router.get('/assets/page.css', (_req, res) => {
    res.type('text/css').set('cache-control', 'public, max-age=3600').send(PAGE_CSS);
  });
  router.use(deps.rateLimit);
  router.use((req, res, next) => {
    res.set('cache-control', 'no-store');
    // Logged without the token: it is the key to the page.
    deps.logger.info({ method: req.method, url: '/pay/[token]' }, 'payment page');
    next();
  });

  router.get('/:token', (req, res) => respond(res, () => show(req, res)));
  router.get('/:token/return', (req, res) => respond(res, () => returned(req, res)));
  router.post('/:token', express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 50 }), (req, res) =>
    respond(res, () => submit(req, res)),
  );

  // Any other address under /pay is answered here, as a page: past this router it would reach the
  // API's request log and its 404, both of which show the address, and the link's token in it.
  router.use((_req, res) => {
    const page = notice('Page not found', 'Open the payment link you were sent again.', 404);
    sendNotice(res, page);
  });

  // What failed before a page could be rendered (too many requests, a form that cannot be read) is
  // answered as a page too, with its status: the customer's browser never shows a JSON problem.
  router.use(((err: unknown, _req, res, _next) => {
    const status = statusOf(err);
    const page =
      status === 429
        ? notice('Too many attempts', 'Please wait a minute, then reload this page.', 429)
        : status < 500
          ? notice('This form could not be read', 'Open the payment link again and submit the form from there.', status)
          : notice('Something went wrong', 'This page could not be shown. Please try again later.', 500);
    if (status >= 500) deps.logger.error({ err }, 'payment page failed');
    const headers = err instanceof ApiError ? err.headers : {};
    res.status(page.status).set(headers).set('cache-control', 'no-store').type('html').send(page.html);
  }) as ErrorRequestHandler);

  async function respond(res: Response, render: () => Promise<void>): Promise<void> {
    try {
      await render();
    } catch (err) {
      if (dependencyOutage(err) || (err instanceof Refusal && err.kind === 'unavailable')) {
        const page = notice(
          'Please try again shortly',
          // A payment sent just before may have been taken: the reload says where it stands.
          'The payment service is busy just now. Reload this page in a moment to see where your payment stands; it is never taken twice.',
          503,
        );
        res.status(page.status).set('retry-after', '5').type('html').send(page.html);
        return;
      }
      deps.logger.error({ err }, 'payment page failed');
      const page = notice('Something went wrong', 'This page could not be shown. Please try again later.', 500);
      sendNotice(res, page);
    }
  }

  async function load(req: Request, res: Response): Promise<Loaded | undefined> {
    const token = req.params.token as string;
    const check = await deps.links.open(deps.orm.em.fork(), token);
    if (!check.valid) {
      const page =
        check.reason === 'expired'
          ? notice('This link has expired', 'Ask the sender for a new payment link.', 410)
          : check.reason === 'revoked'
            ? notice('This link has been withdrawn', 'Ask the sender for a new payment link.', 410)
            : notice(
                'This link is not valid',
                'Check that you copied the whole link, or ask the sender for a new one.',
                404,
              );
      sendNotice(res, page);
      return undefined;
    }
    const { claims } = check;
    const em = deps.orm.em.fork();
    const instruction = await em.findOne(
      PaymentInstruction,
      { instructionId: claims.instructionId, tenantId: claims.tenantId },
      { populate: ['order'] },
    );
    const tenant = await em.findOne(Tenant, { id: claims.tenantId });
    if (
      !instruction ||
      !tenant ||
      instruction.instructionRef !== claims.instructionRef ||
      instruction.order.orderRef !== claims.orderRef
    ) {
      const page = notice('This link is not valid', 'The payment it was made for no longer exists.', 404);
      sendNotice(res, page);
      return undefined;
    }
    const locale = localeOf(req);
    const page: PageInstruction = {
      tenantName: tenant.name,
      direction: instruction.direction,
      amount: displayAmount(instruction.amountMinor, instruction.currency, locale),
      amountMinor: instruction.amountMinor.toString(),
      dueDate: new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: tenant.timeZone ?? 'UTC' }).format(
        instruction.dueAt,
      ),
      // LATE before its due date (a declined payment of the customer's) is still simply open to them.
      status: instruction.status === 'LATE' && instruction.dueAt.getTime() > Date.now() ? 'OPEN' : instruction.status,
      failureCode: instruction.failureCode,
      voucherCode: instruction.voucherCode,
    };
    return { order: instruction.order, instruction, page };
  }

  async function show(req: Request, res: Response, error?: string, status = 200): Promise<void> {
    const loaded = await load(req, res);
    if (!loaded) return;
    const { instruction, page } = loaded;
    // Its workflow was stopped (by an operator) with the instruction still to move, perhaps as it took
    // a payment from this page: it takes none, its read model moves no more, and what became of that
    // payment is for the tenant to say.
    if (!isAtRest(instruction.status) && (await closedWorkflows.closed(loaded.order))) {
      return sendNotice(res, takenNowhere(loaded));
    }
    if (instruction.status !== 'OPEN' && instruction.status !== 'LATE') {
      res.status(status).type('html').send(statusPage(page));
      return;
    }
    // Its last call went unanswered or its outcome is unknown: the workflow takes no payment until the
    // provider answers, so a form would only be refused (after the customer had entered a card).
    if (instruction.status === 'LATE' && speaksOfUnknownOutcome(instruction.failureCode ?? undefined)) {
      res
        .status(status)
        .type('html')
        // (As in progress: LATE before its due date would read as open.)
        .send(statusPage({ ...page, status: 'PROCESSING' }, { note: CONFIRMING_LAST_PAYMENT }));
      return;
    }
    // Just paid from this page (`?after={attempts before}&at={when}`): the workflow has taken the
    // payment but its call may not have started yet, so the read model still says OPEN. Wait for the
    // attempt, a while: a refusal with nothing under way (an unanswered call, a workflow that ended)
    // brings the customer here too, and no attempt comes for it.
    const after = Number(req.query.after);
    // (An address without a time, from before it was added or mangled, waits for nothing.)
    const waitedMs = Date.now() - Number(req.query.at);
    if (Number.isInteger(after) && instruction.attempts <= after && waitedMs <= PAYMENT_START_WAIT_MS) {
      res
        .status(status)
        .type('html')
        .send(statusPage(page, { underWay: true }));
      return;
    }
    const options = await pageOptions(loaded);
    // The form may go to the providers' pages (a redirect after it is posted is held to form-action too).
    const origins = [...new Set(options.flatMap((o) => (o.providerOrigin ? [o.providerOrigin] : [])))];
    res.set('content-security-policy', contentSecurityPolicy(origins));
    const csrf = issueCsrfToken(deps.csrfKey, req, res, req.params.token as string, publicHttps);
    res
      .status(status)
      .type('html')
      .send(
        paymentForm(
          page,
          options,
          {
            action: linkPath(req),
            csrfToken: csrf,
            formId: randomBytes(12).toString('base64url'),
          },
          error,
        ),
      );
  }

  /** The customer the instruction is for, when the tenant stored them: whose saved instruments are offered. */
  async function customerOf({ order, instruction }: Loaded): Promise<Customer | null> {
    const customerRef = instruction.customerRef ?? order.customerRef;
    return customerRef ? deps.orm.em.fork().findOne(Customer, { tenantId: order.tenantId, customerRef }) : null;
  }

  /**
   * Whether a new instrument may be saved on that customer from this page: on a collection's only. A
   * payout's link sends money to whoever holds it; saving there would let a link forwarded or
   * intercepted choose where the customer's later payouts go (offered first on their next link).
   */
  function savesNewInstruments(loaded: Loaded): boolean {
    return loaded.instruction.direction === 'DEBIT';
  }

  /** The scheme's options the page can take: vouchers, and apps whose provider has a form of its own. */
  async function pageOptions(loaded: Loaded): Promise<(PageOption & { providerOrigin?: string })[]> {
    const em = deps.orm.em.fork();
    const customer = await customerOf(loaded);
    const saved = customer ? await deps.instruments.saved(em, customer) : [];
    const options = await deps.orders.paymentOptions(em, loaded.instruction);
    const shown: (PageOption & { providerOrigin?: string })[] = [];
    for (const option of options) {
      const base = { ...option, saved: [], providerName: '', canSave: false };
      if (option.paymentMethod === 'VOUCHER') {
        shown.push(base);
        continue;
      }
      const forms = deps.apps.get(option.appId)?.hostedForms;
      const installation = forms ? await deps.installations.get(loaded.order.tenantId, option.appId) : undefined;
      if (!forms || !installation) continue;
      shown.push({
        ...base,
        saved: saved
          .filter(
            (s) =>
              s.appId === option.appId && s.paymentMethod === option.paymentMethod && !mandateEnded(s.mandateStatus),
          )
          .map((s) => ({ instrumentId: s.id, label: labelOf(s.display) })),
        providerName: PROVIDER_NAMES[option.appId] ?? 'the payment provider',
        canSave: customer !== null && savesNewInstruments(loaded),
        providerOrigin: forms.origin(installation),
      });
    }
    return shown;
  }

  /**
   * The customer is back from the provider's form: the reference it brought is exchanged (once) for
   * the provider's token, kept (on the customer, when they asked to save it), and paid with.
   */
  async function returned(req: Request, res: Response): Promise<void> {
    const loaded = await load(req, res);
    if (!loaded) return;
    // A card number or IBAN in the address (typed into it, or tampered with) goes nowhere, not even
    // to the provider as a session or reference.
    if (paymentDataAmong(req.query)) {
      notPaid(loaded, 'the return from the provider’s form carries payment data', {});
      return show(req, res, NOT_THROUGH, 400);
    }
    const { o, f, s, a, session, ref } = req.query as Record<string, unknown>;
    const formId = typeof f === 'string' && FORM_ID.test(f) ? f : undefined;
    const amountMinor = shownAmountOf(a);
    const option = (loaded.instruction.options ?? []).find((opt) => `${opt.appId}:${opt.paymentMethod}` === o);
    const forms = option ? deps.apps.get(option.appId)?.hostedForms : undefined;
    const installation =
      forms && option ? await deps.installations.get(loaded.order.tenantId, option.appId) : undefined;
    if (
      !option ||
      !forms ||
      !installation ||
      !formId ||
      !amountMinor ||
      typeof session !== 'string' ||
      typeof ref !== 'string'
    ) {
      notPaid(loaded, 'the return from the provider’s form is incomplete', { option: o, formId: f });
      return show(req, res, NOT_THROUGH, 400);
    }
    let tokenised;
    try {
      tokenised = await forms.exchange(session.slice(0, 128), ref.slice(0, 128), installation);
    } catch (err) {
      if (!(err instanceof ProviderRejectedError)) return providerFailed(req, res, loaded, err);
      // Used already (a reload of this address): the page shows where the payment it made stands.
      // Waiting for a further attempt (`?after`) would wait for ever: none is coming.
      if (ALREADY_EXCHANGED.includes(err.code)) return void res.redirect(303, linkPath(req));
      // Unknown to the provider (a mangled or stale address): nothing was paid.
      notPaid(loaded, 'the provider refused the return from its form', { code: err.code });
      return show(req, res, NOT_THROUGH, 400);
    }
    if (tokenised.paymentMethod !== option.paymentMethod) {
      notPaid(loaded, 'the provider’s form took another payment method', { paymentMethod: tokenised.paymentMethod });
      return show(req, res, NOT_THROUGH, 400);
    }
    const customer = s === '1' && savesNewInstruments(loaded) ? await customerOf(loaded) : null;
    // The instrument and its mandate's news commit together.
    const { instrument, deliveries } = await transactionally(deps.orm.em.fork(), async (tx) => {
      const kept = deps.instruments.add(tx, loaded.order.tenantId, option.appId, tokenised, {
        customer: customer ?? undefined,
        enteredFor: loaded.instruction.instructionId,
        madeAt: installation,
      });
      return { instrument: kept, deliveries: await deps.mandates.created(tx, kept, customer?.customerRef ?? null) };
    });
    await deps.mandates.startDeliveries(deliveries);
    await pay(
      req,
      res,
      loaded,
      { appId: option.appId, paymentMethod: option.paymentMethod, instrumentId: instrument.id, amountMinor },
      formId,
      instrument,
    );
  }

  async function pay(
    req: Request,
    res: Response,
    loaded: Loaded,
    choice: PaymentChoice,
    formId: string,
    entered?: PaymentInstrument,
  ): Promise<void> {
    try {
      // One form and what was chosen on it, one update: submitting the same choice twice is one
      // update, taken once. Another choice from the same form (the browser's back button, after the
      // first was declined) is an update of its own, which the workflow takes or refuses as any.
      // (A card entered on the provider's form is exchanged once, so its return is not paid twice.)
      await deps.orders.payInstruction(
        deps.orm.em.fork(),
        loaded.order,
        loaded.instruction,
        choice,
        `page:${loaded.instruction.instructionId}:${formId}:${choice.instrumentId ?? choice.voucherId ?? ''}`,
        entered,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      // The next view of the page offers no form, whatever the page remembered of the workflow.
      if (err.code === CLOSED_DURING_CHANGE || err.code === 'order_workflow_closed')
        closedWorkflows.sawClosed(loaded.order);
      // Taken, then its workflow stopped: the payment may have been sent with what was entered, so
      // that is kept, and the customer is not asked for another card.
      if (err.code === CLOSED_DURING_CHANGE) {
        deps.logger.warn(
          { tenantId: loaded.order.tenantId, orderRef: loaded.order.orderRef, code: err.code },
          'payment page: a payment taken by a workflow stopped before it answered; it may have been sent',
        );
        const page = notice(
          'This payment could not be confirmed',
          `It may have been taken. Please do not pay again: contact ${loaded.page.tenantName} about this payment.`,
          409,
        );
        return sendNotice(res, page);
      }
      // Refused, the payment never named what the customer entered for it.
      if (entered) await deps.instruments.forgetUnpaid(deps.orm.em.fork(), entered);
      if (err.code === 'amount_changed') {
        notPaid(loaded, 'the amount changed since the page was opened', { shown: choice.amountMinor });
        return show(req, res, AMOUNT_CHANGED, 409);
      }
      if (err.kind === 'invalid') {
        notPaid(loaded, 'the payment was refused', { errors: err.errors });
        return show(req, res, 'That choice is not available for this payment.', 400);
      }
      // Its workflow was stopped (by an operator) with the instruction still to pay: the page would
      // otherwise wait for a payment that never comes, then ask again. One stopped or ended after a
      // payment (another tab's) goes to the status page below, which says how that one stands.
      if (err.code === 'order_workflow_closed' && (await stillToPay(loaded))) {
        notPaid(loaded, 'the order’s workflow was stopped', { code: err.code });
        return sendNotice(res, takenNowhere(loaded, 'This attempt charged nothing.'));
      }
      // Another tab or submit got there first: the page shows where that payment stands.
      if (err.kind !== 'conflict') throw err;
    }
    redirectToStatus(req, res, loaded);
  }

  /**
   * The order's workflow was stopped: no payment is taken here. `lead`: what is known of this attempt;
   * without, one may have been taken or be under way, so the customer is told not to pay again.
   */
  function takenNowhere(loaded: Loaded, lead?: string) {
    const contact = `Please contact ${loaded.page.tenantName} about this payment.`;
    const message = lead ? `${lead} ${contact}` : `${contact} If you have paid it already, do not pay it again.`;
    return notice('This payment cannot be taken here', message, 409);
  }

  /** Whether the instruction is still open to the customer as the read model has it now: nothing paid, nothing under way. */
  async function stillToPay({ instruction }: Loaded): Promise<boolean> {
    const now = await deps.orm.em
      .fork()
      .findOne(PaymentInstruction, { instructionId: instruction.instructionId, tenantId: instruction.tenantId });
    return (now?.status === 'OPEN' || now?.status === 'LATE') && !speaksOfUnknownOutcome(now.failureCode ?? undefined);
  }

  /** Why a customer is shown the form again with an error: told once, so a failed payment can be explained. */
  function notPaid(loaded: Loaded, why: string, details: Record<string, unknown>): void {
    deps.logger.warn(
      { tenantId: loaded.order.tenantId, orderRef: loaded.order.orderRef, ...details },
      `payment page: nothing paid, ${why}`,
    );
  }

  /** The provider's form could not be opened, or its answer not believed: nothing was paid; the customer may try again. */
  async function providerFailed(req: Request, res: Response, loaded: Loaded, err: unknown): Promise<void> {
    deps.logger.warn(
      { tenantId: loaded.order.tenantId, orderRef: loaded.order.orderRef, err },
      'the provider’s hosted form failed',
    );
    return show(
      req,
      res,
      'The payment service could not take your details just now. Nothing was charged; please try again.',
      502,
    );
  }

  function redirectToStatus(req: Request, res: Response, loaded: Loaded): void {
    res.redirect(303, `${linkPath(req)}?after=${loaded.instruction.attempts}&at=${Date.now()}`);
  }

  async function submit(req: Request, res: Response): Promise<void> {
    const loaded = await load(req, res);
    if (!loaded) return;
    const form = (req.body ?? {}) as Record<string, unknown>;
    if (!csrfTokenValid(deps.csrfKey, req, req.params.token as string, form.csrf, publicHttps)) {
      const page = notice('This form has expired', 'Open the payment link again and submit the form from there.', 403);
      sendNotice(res, page);
      return;
    }
    // A customer who types their card number or IBAN here is stopped: it goes nowhere, not even to a log.
    const typed = paymentDataAmong(form);
    if (typed) return show(req, res, TYPED_PAYMENT_DATA[typed], 400);
    const choice = choiceFrom(form);
    const formId = typeof form.form === 'string' && FORM_ID.test(form.form) ? form.form : undefined;
    if (!choice || !formId) return show(req, res, 'Choose how to pay.', 400);
    if (choice.instrumentId !== 'new') return pay(req, res, loaded, choice, formId);
    // A new card or account: to the provider's own page, which sends the customer back here.
    const forms = deps.apps.get(choice.appId)?.hostedForms;
    const installation = forms ? await deps.installations.get(loaded.order.tenantId, choice.appId) : undefined;
    const offered = (loaded.instruction.options ?? []).some(
      (o) => o.appId === choice.appId && o.paymentMethod === choice.paymentMethod,
    );
    if (!forms || !installation || !offered || choice.paymentMethod === 'VOUCHER')
      return show(req, res, 'That choice is not available for this payment.', 400);
    const back = new URL(`${deps.publicUrl}/pay/${encodeURIComponent(req.params.token as string)}/return`);
    back.searchParams.set('o', `${choice.appId}:${choice.paymentMethod}`);
    back.searchParams.set('f', formId);
    back.searchParams.set('a', choice.amountMinor);
    back.searchParams.set('s', form[`save:${choice.appId}:${choice.paymentMethod}`] === 'yes' ? '1' : '0');
    let session;
    try {
      session = await forms.open(
        { paymentMethod: choice.paymentMethod, returnUrl: back.toString(), locale: localeOf(req) },
        installation,
        loaded.order.tenantId,
      );
    } catch (err) {
      return providerFailed(req, res, loaded, err);
    }
    res.redirect(303, session.url);
  }

  return router;
}

/** A notice (page-html.ts `notice`) sent as the answer, with its status. */
function sendNotice(res: Response, page: { status: number; html: string }): void {
  res.status(page.status).type('html').send(page.html);
}

/** The payment link's own address (the page's), from any address under it. */
function linkPath(req: Request): string {
  return `${req.baseUrl}/${encodeURIComponent(req.params.token as string)}`;
}

/** How a provider says its form's reference was exchanged already: the sandbox by name, others by HTTP 409. */
const ALREADY_EXCHANGED = ['already_exchanged', 'http_409'];

/** The 4xx an error stands for (the rate limit's ApiError, the form parser's errors), or 500. */
function statusOf(err: unknown): number {
  const status = err instanceof ApiError ? err.status : (err as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : 500;
}

/**
 * The amount the customer was shown, as the form or the return address carries it; undefined if it
 * is not one. Digits that read as a card number are not, whatever their source: they would go on to
 * the provider's return address, a log line and the order's workflow.
 */
function shownAmountOf(value: unknown): string | undefined {
  return typeof value === 'string' && AMOUNT_MINOR.test(value) && !paymentDataIn(value) ? value : undefined;
}

/** What the customer chose on the form, with the amount they were shown; undefined if any of it is missing. */
function choiceFrom(form: Record<string, unknown>): (PaymentChoice & { amountMinor: string }) | undefined {
  if (typeof form.option !== 'string') return undefined;
  const amountMinor = shownAmountOf(form.amount);
  if (!amountMinor) return undefined;
  const [appId, method] = form.option.split(':');
  if (!appId || !(PAYMENT_METHODS as readonly string[]).includes(method ?? '')) return undefined;
  const paymentMethod = method as PaymentMethod;
  if (paymentMethod === 'VOUCHER') {
    return typeof form.voucherId === 'string' && form.voucherId.length <= 100
      ? { appId, paymentMethod, voucherId: form.voucherId, amountMinor }
      : undefined;
  }
  // A saved instrument's id, or "new": never the details themselves.
  const instrument = form[`instrument:${form.option}`];
  if (instrument !== 'new' && (typeof instrument !== 'string' || !LOWER_CASE_UUID.test(instrument))) return undefined;
  return { appId, paymentMethod, instrumentId: instrument, amountMinor };
}

/** A saved instrument as the customer knows it: "Visa •••• 4242, expires 12/30", "GB33 •••• 5555 (Ada Lovelace)". */
function labelOf(display: InstrumentDisplay): string {
  if (display.last4) {
    const brand = display.brand ? display.brand[0].toUpperCase() + display.brand.slice(1) : 'Card';
    const expiry =
      display.expMonth && display.expYear
        ? `, expires ${String(display.expMonth).padStart(2, '0')}/${String(display.expYear).slice(-2)}`
        : '';
    return `${brand} •••• ${display.last4}${expiry}`;
  }
  return `${display.maskedIban ?? 'Bank account'}${display.holderName ? ` (${display.holderName})` : ''}`;
}

/** The page's policy: no script, its own stylesheet, and forms only to itself and the given providers. */
function contentSecurityPolicy(formOrigins: string[]): string {
  return [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self'",
    `form-action 'self'${formOrigins.map((origin) => ` ${origin}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** The customer's first language that Intl knows, from Accept-Language; English otherwise. */
function localeOf(req: Request): string {
  for (const part of (req.header('accept-language') ?? '').slice(0, 200).split(',')) {
    const tag = part.split(';')[0]?.trim();
    if (!tag || tag === '*') continue;
    try {
      const [canonical] = Intl.getCanonicalLocales(tag);
      if (canonical && Intl.NumberFormat.supportedLocalesOf(canonical).length > 0) return canonical;
    } catch {
      // Not a language tag: try the next.
    }
  }
  return 'en';
}

/** What payment data a form's or an address's values carry, if any (their names are ours). */
function paymentDataAmong(fields: Record<string, unknown>): PaymentData | undefined {
  return paymentDataIn(...Object.values(fields).filter((value) => typeof value === 'string'));
}
