// No card number ever reaches us (ARCHITECTURE.md, "Money, dates, references"): what looks like one is
// refused wherever text comes in, and masked wherever text goes out to a log.

/** 13 to 19 digits, single spaces or dashes allowed between them, not part of a longer run of digits. */
const CANDIDATE = /(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])/g;
/** The same in a log line, where a URL may hold it encoded (`%20`, `+`, `%2D` between the digits). */
const LOGGED_CANDIDATE = /(?<![\d])\d(?:(?:[ +-]|%20|%2[dD])?\d){12,18}(?![\d])/g;
const SEPARATOR = /[ +-]|%20|%2[dD]/;
/**
 * A UUID's groups are digits and dashes often enough (8-4-4-4-12) to read as a dashed card number
 * one time in a few thousand: every id of this API is one, so UUIDs are not read for card numbers.
 */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const withoutUuids = (text: string) => text.replace(UUID, (uuid) => 'u'.repeat(uuid.length));

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

/**
 * Whether an issuer could have given these digits, leading zeros taken for padding (ISO/IEC 7812: no
 * card number starts with 0, and the first digit names the industry). Of those starting with 1
 * (airlines) only UATP's are payment cards, all of 15 digits. So a zero-padded counter, or a time in
 * milliseconds, microseconds or nanoseconds (13, 16, 19 digits from a 1 until the year 2286), is not
 * read as a card one time in ten when it passes the Luhn check; a card number padded with zeros is.
 */
function couldBeCard(digits: string): boolean {
  const significant = digits.replace(/^0+/, '');
  if (significant.length < 13) return false;
  if (significant[0] === '1' && significant.length !== 15) return false;
  return passesLuhn(significant);
}

/**
 * Whether a run of digit groups holds a card number: all of it, or any run of whole groups in it of
 * 13 to 19 digits. `4242424242424242 400` (a card number, then a status code) fails the check as a
 * whole, but holds one.
 */
function holdsCard(candidate: string, separators: RegExp): boolean {
  const groups = candidate.split(separators);
  for (let first = 0; first < groups.length; first++) {
    let digits = '';
    for (let last = first; last < groups.length; last++) {
      digits += groups[last];
      if (digits.length > 19) break;
      if (couldBeCard(digits)) return true;
    }
  }
  return false;
}

/** The card numbers a text holds (as written), if any: 13–19 digits an issuer could have given, passing the Luhn check. */
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
 * The text with every card number in it replaced, for a log line. A bare number straight after a
 * JSON key (`"time":1764504000126`, epoch milliseconds) is a value the logger wrote, not text anyone
 * sent: it is left, so that the line stays JSON.
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
    const jsonNumber = text.slice(Math.max(0, offset - 2), offset) === '":' && /^\d+$/.test(candidate);
    if (jsonNumber || !holdsCard(candidate, SEPARATOR)) continue;
    masked += `${text.slice(from, offset)}[card number]`;
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
