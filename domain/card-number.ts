// No card number ever reaches us (ARCHITECTURE.md, "Money, dates, references"): what looks like one is
// refused wherever text comes in, and masked wherever text goes out to a log.
import { UUID_TEXT } from './uuid.js';

/**
 * A run of 13 or more digits, single spaces or dashes allowed between them, not part of a longer run
 * of digits. Of any length: a card number may follow other digits in the run (`2024 4242 4242 4242
 * 4242`), and each window of whole groups in it is read (`holdsCard`).
 */
const CANDIDATE = /(?<![\d])\d(?:[ -]?\d){12,}(?![\d])/g;
/** The same in a log line, where a URL may hold it encoded (`%20`, `+`, `%2D` between the digits). */
const LOGGED_CANDIDATE = /(?<![\d])\d(?:(?:[ +-]|%20|%2[dD])?\d){12,}(?![\d])/g;
const SEPARATOR = /[ +-]|%20|%2[dD]/;
/**
 * A UUID's groups are digits and dashes often enough (8-4-4-4-12) to read as a dashed card number
 * one time in a few thousand: every id of this API is one, so UUIDs are not read for card numbers.
 */
const UUIDS = new RegExp(UUID_TEXT, 'gi');
export const withoutUuids = (text: string) => text.replace(UUIDS, (uuid) => 'u'.repeat(uuid.length));

/** The Luhn checksum every payment card number carries. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The one length of the cards issued from 1, 20 and 21: UATP's (1) and JCB's first numbers (1800, 2131). */
const FIFTEEN = 15;

/**
 * Whether digits with their leading zeros set aside could be a card number: 13 to 19 of them (a card
 * written with padding is still one; a zero-padded counter of fewer digits is none), passing the Luhn
 * check. Two exceptions, where the only cards issued are of 15 digits:
 * - From 1 (ISO/IEC 7812's airline digit), UATP's. Times in milliseconds (13 digits), microseconds
 *   (16) and nanoseconds (19) start with 1 until 2033, as do many snowflake ids (18-19 digits).
 * - From 20 and 21, JCB's old 2131 numbers; no other card starts there (Mir's are 2200–2204,
 *   Mastercard's 2221–2720). References stamped with a date and time (yyyymmddhhmmss and a counter)
 *   start there until 2200.
 * One in ten of those passes the check, and they are often sent as references and idempotency keys.
 */
function couldBeCard(significant: string): boolean {
  if (significant.length < 13 || significant.length > 19) return false;
  if (/^(?:1|2[01])/.test(significant) && significant.length !== FIFTEEN) return false;
  return passesLuhn(significant);
}

/**
 * Whether a run of digit groups holds a card number: all of it, or any window of whole groups in it.
 * `4242424242424242 400` (a card number, then a status code) fails the check as a whole, but holds
 * one; so does `2024 4242 4242 4242 4242`. A window starting with a group of zeros reads as the one
 * after it, so none is read: however many groups, each starts a window of at most 19 digits.
 */
function holdsCard(candidate: string, separators: RegExp): boolean {
  const groups = candidate.split(separators);
  for (let first = 0; first < groups.length; first++) {
    if (/^0*$/.test(groups[first])) continue;
    let digits = '';
    for (let last = first; last < groups.length; last++) {
      digits += groups[last];
      const significant = digits.replace(/^0+/, '');
      if (significant.length > 19) break;
      if (couldBeCard(significant)) return true;
    }
  }
  return false;
}

/** The runs of digits in a text that hold a card number (as written), if any. */
export function cardNumbersIn(text: string): string[] {
  if (text.length < 13) return [];
  const found: string[] = [];
  for (const match of withoutUuids(text).matchAll(CANDIDATE)) {
    if (holdsCard(match[0], /[ -]/)) found.push(match[0]);
  }
  return found;
}

export function holdsCardNumber(text: string): boolean {
  return cardNumbersIn(text).length > 0;
}

/**
 * The text with every card number in it replaced, for a log line. One written as a JSON number
 * (`"note":4242424242424242`) is replaced by a string, so that the line stays JSON.
 */
export function maskCardNumbers(text: string): string {
  if (text.length < 13) return text;
  // Found in the text with its UUIDs blanked out (same length), replaced in the text itself.
  const blanked = withoutUuids(text);
  let masked = '';
  let from = 0;
  for (const match of blanked.matchAll(LOGGED_CANDIDATE)) {
    const candidate = match[0];
    const offset = match.index;
    if (!holdsCard(candidate, SEPARATOR)) continue;
    const jsonNumber = text.slice(Math.max(0, offset - 2), offset) === '":' && /^\d+$/.test(candidate);
    masked += `${text.slice(from, offset)}${jsonNumber ? '"[card number]"' : '[card number]'}`;
    from = offset + candidate.length;
  }
  return masked + text.slice(from);
}

/** The refusal's words: never echoing the number. */
export const CARD_NUMBER_NOT_ALLOWED = {
  code: 'card_number_not_allowed',
  message:
    'looks like a payment card number, which this API never takes: send the provider’s token or reference instead',
} as const;
