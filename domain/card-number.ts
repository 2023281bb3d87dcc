// No card number ever reaches us (ARCHITECTURE.md, "Money, dates, references"): what looks like one is
// refused wherever text comes in, and masked wherever text goes out to a log.

/** 13 to 19 digits, single spaces or dashes allowed between them, not part of a longer run of digits. */
const CANDIDATE = /(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])/g;
/** The same in a log line, where a URL may hold it encoded (`%20`, `+`, `%2D` between the digits). */
const LOGGED_CANDIDATE = /(?<![\d])\d(?:(?:[ +-]|%20|%2[dD])?\d){12,18}(?![\d])/g;
const SEPARATORS = /[ +-]|%20|%2[dD]/g;

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

/** The card numbers a text holds (as written), if any: 13–19 digits passing the Luhn check. */
export function cardNumbersIn(text: string): string[] {
  if (text.length < 13) return [];
  const found: string[] = [];
  for (const match of text.matchAll(CANDIDATE)) {
    if (passesLuhn(match[0].replace(/[ -]/g, ''))) found.push(match[0]);
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
  return text.replace(LOGGED_CANDIDATE, (candidate: string, offset: number) => {
    const jsonNumber = text.slice(Math.max(0, offset - 2), offset) === '":' && /^\d+$/.test(candidate);
    return !jsonNumber && passesLuhn(candidate.replace(SEPARATORS, '')) ? '[card number]' : candidate;
  });
}

/** The refusal's words: never echoing the number. */
export const CARD_NUMBER_NOT_ALLOWED = {
  code: 'card_number_not_allowed',
  message:
    'looks like a payment card number, which this API never takes: send the provider’s token or reference instead',
} as const;
