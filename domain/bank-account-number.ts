// No bank account number reaches us either (ARCHITECTURE.md, "Money, dates, references"): an IBAN is
// refused wherever text comes in, as a card number is, and masked wherever text goes out to a log.
import { countrySpecs, isValidIBAN } from 'ibantools';
import { withoutUuids } from './card-number.js';

/**
 * Where an IBAN may begin: a country code and two check digits, not within a longer word or number.
 * In a log line, also right after any URL-encoded character (`%3A`, `%20`…) or a JSON escape (`\n`).
 */
const START = /(?:(?<![\p{L}\p{N}])|(?<=%[0-9A-Fa-f]{2}|\\[nrtbf"/\\]))[A-Za-z]{2}\d{2}/gu;
/**
 * What may stand between two of its groups of four, as an IBAN is printed (`DE89 3704 0044 …`): a
 * space (no-break ones too, as copied from a page), a tab, a dash, a dot or a slash (as some banks
 * and forms print it); in a log line, their URL encodings and JSON escapes too. Nowhere else: words
 * that happen to spell a country's format are not read as one.
 */
const SEPARATOR = /^(?:[ \u00a0\u202f\t+./-]|%20|%2d|%2e|%2f|%09|%c2%a0|%e2%80%af|\\t|\\\/|\\u00a0|\\u202f)/i;
const ALPHANUMERIC = /[A-Za-z0-9]/;
const WORD_CHARACTER = /[\p{L}\p{N}]/u;

/**
 * The IBAN the text holds from `start`: where it ends in the text, or undefined when none begins
 * there. Its letters are all capitals or all small (as written by a person or a bank, not a word in a
 * sentence), it is as long as its country's, and it ends where a word would.
 */
function ibanAt(text: string, start: number): number | undefined {
  const length = countrySpecs[text.slice(start, start + 2).toUpperCase()]?.chars;
  if (!length) return undefined;
  let compact = '';
  let at = start;
  while (compact.length < length) {
    if (compact.length > 0 && compact.length % 4 === 0) {
      const separator = SEPARATOR.exec(text.slice(at, at + 9));
      if (separator) at += separator[0].length;
    }
    const char = text[at];
    if (char === undefined || !ALPHANUMERIC.test(char)) return undefined;
    compact += char;
    at += 1;
  }
  if (at < text.length && WORD_CHARACTER.test(text[at])) return undefined;
  if (compact !== compact.toUpperCase() && compact !== compact.toLowerCase()) return undefined;
  return isValidIBAN(compact.toUpperCase()) ? at : undefined;
}

/** Each IBAN in a text, as `[start, end)` offsets of how it is written there. Linear: at most 34 characters read at each start. */
function ibanSpans(written: string): [number, number][] {
  // Read with its UUIDs blanked out (same length): an id's hex groups could spell one by chance.
  const text = withoutUuids(written);
  const spans: [number, number][] = [];
  const starts = new RegExp(START.source, START.flags);
  for (let match = starts.exec(text); match; match = starts.exec(text)) {
    const end = ibanAt(text, match.index);
    if (end === undefined) continue;
    spans.push([match.index, end]);
    starts.lastIndex = end;
  }
  return spans;
}

export function holdsBankAccountNumber(text: string): boolean {
  return text.length >= 15 && ibanSpans(text).length > 0;
}

/** The text with every IBAN in it replaced, for a log line. */
export function maskBankAccountNumbers(text: string): string {
  if (text.length < 15) return text;
  let masked = '';
  let from = 0;
  for (const [start, end] of ibanSpans(text)) {
    masked += `${text.slice(from, start)}[bank account]`;
    from = end;
  }
  return masked + text.slice(from);
}

/** The refusal's words: never echoing the number. */
export const BANK_ACCOUNT_NUMBER_NOT_ALLOWED = {
  code: 'bank_account_number_not_allowed',
  message:
    'looks like a bank account number (an IBAN), which this API never takes: send the provider’s token or reference instead',
} as const;
