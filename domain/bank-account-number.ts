// No bank account number reaches us either (ARCHITECTURE.md, "Money, dates, references"): an IBAN is
// refused wherever text comes in, as a card number is, and masked wherever text goes out to a log.
import { countrySpecs, isValidIBAN } from 'ibantools';
import { withoutUuids } from './card-number.js';

/**
 * Where an IBAN may begin: a country code and two check digits, then at least 11 more letters or
 * digits (the shortest IBAN has 15), single spaces or dashes allowed between them (`DE89 3704 …`),
 * and in a log line their URL encodings too. Not within a longer word or number.
 */
const CANDIDATE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:(?:[ +-]|%20|%2[dD])?[A-Za-z0-9]){11,}/g;
const SEPARATOR = /^(?:[ +-]|%20|%2[dD])/;

/** An IBAN in the text from `start`: where it ends in the text, or undefined when none begins there. */
function ibanAt(text: string, start: number): number | undefined {
  const length = countrySpecs[text.slice(start, start + 2).toUpperCase()]?.chars;
  if (!length) return undefined;
  // Its first `length` letters and digits, whatever separates them, and where the last one ends.
  let compact = '';
  let at = start;
  while (compact.length < length && at < text.length) {
    const separator = SEPARATOR.exec(text.slice(at, at + 3));
    if (separator && compact.length > 0) at += separator[0].length;
    const char = text[at];
    if (char === undefined || !/[A-Za-z0-9]/.test(char)) return undefined;
    compact += char.toUpperCase();
    at += 1;
  }
  return compact.length === length && isValidIBAN(compact) ? at : undefined;
}

/** Each IBAN in a text, as `[start, end)` offsets of how it is written there. */
function ibanSpans(written: string): [number, number][] {
  // Read with its UUIDs blanked out (same length): an id's hex groups could spell one by chance.
  const text = withoutUuids(written);
  const spans: [number, number][] = [];
  const candidates = new RegExp(CANDIDATE.source, 'g');
  for (let match = candidates.exec(text); match; match = candidates.exec(text)) {
    const end = ibanAt(text, match.index);
    if (end === undefined) {
      // Another may begin inside this one's run (`ref AB12 DE89 3704 …`): look again from the next character.
      candidates.lastIndex = match.index + 1;
      continue;
    }
    spans.push([match.index, end]);
    candidates.lastIndex = end;
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
