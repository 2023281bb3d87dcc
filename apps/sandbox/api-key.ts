import { randomInt } from 'node:crypto';

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * A new sandbox merchant key, `sk_test_` and 24 random letters. Letters only: random hex can hold a
 * run of 13 or more digits passing the Luhn check, which the API refuses as a card number (a key
 * of that kind would fail an installation now and then).
 */
export function newSandboxApiKey(): string {
  return `sk_test_${Array.from({ length: 24 }, () => LETTERS[randomInt(LETTERS.length)]).join('')}`;
}
