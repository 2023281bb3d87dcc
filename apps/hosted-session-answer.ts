import { z } from 'zod';
import type { HostedSession, TokenisedInstrument } from '../domain/instrument.js';
import { MANDATE_STATUSES } from '../domain/instrument.js';
import { paymentDataIn } from '../domain/payment-data.js';
import { MalformedAnswerError } from './provider-answer.js';

const printable = (max: number) =>
  z
    .string()
    .regex(/^[\x20-\x7e\u00a0-\uffff]*$/)
    .min(1)
    .max(max);

/**
 * What a mask of a bank account may show: its country and check digits and its last four (8 letters
 * or digits at most; `X` and `x` count as masking). A bare domestic account number, or an IBAN one
 * character off (not an IBAN, so not refused as one), shows more and is no mask.
 */
export function isMasked(text: string): boolean {
  return (text.match(/[0-9A-WYZa-wyz]/g) ?? []).length <= 8;
}

const sessionSchema = z.object({ id: printable(128), url: z.url({ protocol: /^https?$/ }).max(2048) });

const tokenisedSchema = z.object({
  token: z.string().regex(/^[\x21-\x7e]{1,200}$/),
  paymentMethod: z.enum(['CARD', 'BANK_DEBIT', 'BANK_TRANSFER']),
  display: z.object({
    brand: printable(32).optional(),
    last4: z
      .string()
      .regex(/^[0-9A-Za-z]{4}$/)
      .optional(),
    expMonth: z.number().int().min(1).max(12).optional(),
    expYear: z.number().int().min(2000).max(2199).optional(),
    maskedIban: printable(42).refine(isMasked).optional(),
    holderName: printable(140).optional(),
  }),
  mandate: z
    .object({ mandateRef: printable(64), status: z.enum(MANDATE_STATUSES), signedAt: z.iso.datetime({ offset: true }) })
    .optional(),
});

/** A provider's answer to opening a hosted form, checked: an id and an http(s) page. */
export function checkedSession(body: unknown, who: string): HostedSession {
  const parsed = sessionSchema.safeParse(body);
  if (!parsed.success) throw new MalformedAnswerError(`${who} answered a hosted session that is not one`);
  return { sessionId: parsed.data.id, url: parsed.data.url };
}

/**
 * A provider's answer to an exchange, checked, and refused if anything in it reads as a card number
 * or an IBAN, or a `maskedIban` that shows more than a mask (`isMasked`): a provider that sends one
 * back must not get it stored through us.
 */
export function checkedTokenised(body: unknown, who: string): TokenisedInstrument {
  const parsed = tokenisedSchema.safeParse(body);
  if (!parsed.success) throw new MalformedAnswerError(`${who} answered a token that is not one`);
  const { token, display, mandate } = parsed.data;
  const texts = [token, ...Object.values(display).map(String), ...(mandate ? [mandate.mandateRef] : [])];
  const sent = paymentDataIn(...texts);
  if (sent === 'card_number') throw new MalformedAnswerError(`${who} answered a card number where a token belongs`);
  if (sent === 'bank_account')
    throw new MalformedAnswerError(`${who} answered a bank account number where a token or mask belongs`);
  return parsed.data;
}
