import escapeHtml from 'escape-html';
import type { PaymentMethod } from '../../domain/scheme.js';
import type { PaymentOption } from '../payment-options.js';

/** What the page shows of one instruction: nothing of the tenant's configuration, nor of other instructions. */
export interface PageInstruction {
  tenantName: string;
  direction: 'DEBIT' | 'CREDIT';
  /** Already formatted for the customer's locale. */
  amount: string;
  /** The same in minor units: the form carries it, and a payment is refused if the amount has changed since. */
  amountMinor: string;
  dueDate: string;
  status: string;
  failureCode?: string | null;
  voucherCode?: string | null;
}

const STATUS_WORDS: Record<string, string> = {
  PENDING: 'Not open for payment yet',
  OPEN: 'Open for payment',
  PROCESSING: 'Payment in progress',
  LATE: 'Overdue',
  SETTLED: 'Paid',
  RETURNED: 'Returned by the bank',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

const FAILURE_WORDS: Record<string, string> = {
  do_not_honor: 'Your bank declined the card.',
  suspected_fraud: 'Your bank declined the card.',
  insufficient_funds: 'The payment was declined: insufficient funds.',
  account_closed: 'The bank account is closed.',
  invalid_voucher: 'That voucher is not available.',
  provider_unavailable: 'The payment service did not answer. Please try again later.',
  expired: 'This payment is no longer due here. Please contact us.',
  'returned:insufficient_funds': 'Your bank returned the payment: insufficient funds.',
  'charged_back:fraudulent': 'The payment was disputed and reversed.',
};

/** Words for a failure whose code is its kind and the provider's code (`returned:…`), by its kind. */
const FAILURE_KIND_WORDS: Record<string, string> = {
  returned: 'Your bank returned the payment.',
  charged_back: 'The payment was disputed and reversed.',
  // Told under a key the merchant has replaced since: not collected again until it checks.
  returned_replaced_secret: 'The payment was reversed. Please contact us.',
  charged_back_replaced_secret: 'The payment was reversed. Please contact us.',
};

/** What the page says of a failure: its code's own words, else its kind's, else `otherwise`. */
export function failureWords(failureCode: string | null | undefined, otherwise: string): string {
  if (!failureCode) return otherwise;
  // Own keys only: a provider's code may be any word (`constructor`, say).
  const kind = failureCode.split(':')[0];
  if (Object.hasOwn(FAILURE_WORDS, failureCode)) return FAILURE_WORDS[failureCode];
  return Object.hasOwn(FAILURE_KIND_WORDS, kind) ? FAILURE_KIND_WORDS[kind] : otherwise;
}

const METHOD_WORDS: Record<PaymentMethod, { label: string; field: string; fresh: string; save: string }> = {
  CARD: { label: 'Card', field: 'Which card?', fresh: 'A new card', save: 'Save this card for next time' },
  BANK_DEBIT: {
    label: 'Bank debit',
    field: 'Which bank account?',
    fresh: 'A new bank account',
    save: 'Save this account for next time',
  },
  BANK_TRANSFER: {
    label: 'Bank transfer',
    field: 'Which bank account to pay into?',
    fresh: 'A new bank account',
    save: 'Save this account for next time',
  },
  VOUCHER: { label: 'Voucher', field: 'Voucher', fresh: '', save: '' },
};

/** An option as the form offers it: the customer's saved instruments for it, and whether a new one may be saved. */
export interface PageOption extends PaymentOption {
  saved: { instrumentId: string; label: string }[];
  /** The provider whose page takes a new card or account. */
  providerName: string;
  canSave: boolean;
}

function layout(title: string, body: string, refreshSeconds?: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : ''}
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/pay/assets/page.css">
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/** A page for a link that leads nowhere: expired, unknown, or its instruction gone. */
export function notice(title: string, message: string, status = 200): { status: number; html: string } {
  return { status, html: layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`) };
}

function summary(i: PageInstruction): string {
  return `<p class="tenant">${escapeHtml(i.tenantName)}</p>
<h1>${i.direction === 'DEBIT' ? 'Payment due' : 'Payout for you'}</h1>
<dl>
<dt>Amount</dt><dd class="amount">${escapeHtml(i.amount)}</dd>
<dt>Due</dt><dd>${escapeHtml(i.dueDate)}</dd>
<dt>Status</dt><dd class="status" data-status="${escapeHtml(i.status)}">${escapeHtml(STATUS_WORDS[i.status] ?? i.status)}</dd>
</dl>`;
}

/**
 * The instruction as it stands. While a payment is under way (or just taken, before the read model
 * shows it) the page looks again every few seconds, without a script: a meta refresh.
 */
export function statusPage(i: PageInstruction, options: { underWay?: boolean; note?: string } = {}): string {
  const { note } = options;
  const underWay = options.underWay ?? i.status === 'PROCESSING';
  const done =
    i.status === 'SETTLED'
      ? `<p role="status">${i.direction === 'DEBIT' ? 'Thank you: this payment is complete.' : 'The payout is on its way to you.'}</p>`
      : '';
  const voucher = i.voucherCode
    ? `<p>Your voucher code: <strong class="voucher-code">${escapeHtml(i.voucherCode)}</strong></p>`
    : '';
  const failed =
    i.status === 'FAILED'
      ? `<p role="alert">${escapeHtml(failureWords(i.failureCode, 'The payment failed.'))}</p>`
      : '';
  const waiting = underWay
    ? '<p role="status">Waiting for the payment to complete. This page updates by itself.</p>'
    : '';
  const extra = note ? `<p role="alert">${escapeHtml(note)}</p>` : '';
  return layout(
    'Payment',
    `${summary(underWay ? { ...i, status: 'PROCESSING' } : i)}\n${extra}${done}${voucher}${failed}${waiting}`,
    underWay ? 2 : undefined,
  );
}

/** The form: one choice per option the scheme offers, an instrument for it, and the CSRF token. */
export function paymentForm(
  i: PageInstruction,
  options: PageOption[],
  form: {
    /** Where it is posted: the link's own address (the page may be shown at the provider's return address). */
    action: string;
    csrfToken: string;
    formId: string;
  },
  error?: string,
): string {
  const { action, csrfToken, formId } = form;
  const previous =
    i.failureCode && (i.status === 'OPEN' || i.status === 'LATE')
      ? failureWords(i.failureCode, 'The last payment failed.')
      : undefined;
  const alert = error ?? previous;
  const choices = options
    .map((option, n) => {
      const words = METHOD_WORDS[option.paymentMethod];
      const id = `option-${n}`;
      const value = `${option.appId}:${option.paymentMethod}`;
      const vouchers =
        option.vouchers?.map(
          (v, k) =>
            `<div class="choice"><input type="radio" name="voucherId" id="${id}-v${k}" value="${escapeHtml(v.voucherId)}"${k === 0 ? ' checked' : ''}><label for="${id}-v${k}">${escapeHtml(`${v.brand} ${v.name}`)}</label></div>`,
        ) ?? [];
      // Never a field for a card number or an IBAN: a new one is typed on the provider's own page.
      const instruments = [
        ...option.saved.map(
          (s, k) =>
            `<div class="choice"><input type="radio" name="instrument:${escapeHtml(value)}" id="${id}-s${k}" value="${escapeHtml(s.instrumentId)}"${k === 0 ? ' checked' : ''}><label for="${id}-s${k}">${escapeHtml(s.label)}</label></div>`,
        ),
        `<div class="choice"><input type="radio" name="instrument:${escapeHtml(value)}" id="${id}-new" value="new"${option.saved.length === 0 ? ' checked' : ''} aria-describedby="${id}-hint"><label for="${id}-new">${escapeHtml(words.fresh)}</label></div>
<p class="hint" id="${id}-hint">${escapeHtml(`You enter it on the secure page of ${option.providerName}; we never see it.`)}</p>`,
        option.canSave
          ? `<div class="choice"><input type="checkbox" name="save:${escapeHtml(value)}" id="${id}-save" value="yes"><label for="${id}-save">${escapeHtml(words.save)}</label></div>`
          : '',
      ];
      const instrument =
        option.paymentMethod === 'VOUCHER'
          ? `<fieldset><legend>${escapeHtml(words.field)}</legend>${vouchers.join('')}</fieldset>`
          : `<fieldset><legend>${escapeHtml(words.field)}</legend>${instruments.join('\n')}</fieldset>`;
      return `<div class="option">
<div class="choice"><input type="radio" name="option" id="${id}" value="${escapeHtml(value)}"${n === 0 ? ' checked' : ''}><label for="${id}">${escapeHtml(words.label)}</label></div>
${instrument}
</div>`;
    })
    .join('\n');
  return layout(
    'Payment',
    `${summary(i)}
${alert ? `<p role="alert">${escapeHtml(alert)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
<fieldset>
<legend>${i.direction === 'DEBIT' ? 'How would you like to pay?' : 'How would you like to be paid?'}</legend>
${choices}
</fieldset>
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<input type="hidden" name="form" value="${escapeHtml(formId)}">
<input type="hidden" name="amount" value="${escapeHtml(i.amountMinor)}">
<button type="submit">${i.direction === 'DEBIT' ? `Pay ${escapeHtml(i.amount)}` : 'Claim'}</button>
</form>`,
  );
}

export const PAGE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}
main{max-width:32rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh}
h1{font-size:1.5rem;margin:.25rem 0 1rem}
.tenant{margin:0;color:#444;font-weight:600}
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:0 0 1.5rem}
dt{color:#444}dd{margin:0;font-weight:600}
fieldset{border:1px solid #c8ccd2;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
legend{font-weight:600;padding:0 .25rem}
.option{margin-bottom:1rem}
.choice{display:flex;align-items:center;gap:.5rem;margin:.25rem 0}
label{font-weight:500}
input[type=text]{display:block;width:100%;padding:.6rem;font-size:1rem;border:1px solid #6b7280;border-radius:.375rem;margin-top:.25rem}
input:focus,button:focus{outline:3px solid #1d4ed8;outline-offset:2px}
.hint{margin:.25rem 0 0;color:#4b5563;font-size:.875rem}
button{width:100%;padding:.8rem;font-size:1.05rem;font-weight:600;color:#fff;background:#1d4ed8;border:0;border-radius:.5rem;cursor:pointer}
[role=alert]{padding:.75rem;border-radius:.375rem;background:#fef2f2;color:#7f1d1d;border:1px solid #fca5a5}
[role=status]{padding:.75rem;border-radius:.375rem;background:#eff6ff;color:#1e3a8a}
.voucher-code{font-family:ui-monospace,monospace}
`;
