import { randomInt } from 'node:crypto';

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * A random id of the sandbox's, `prefix` and `length` random letters. Letters only: random hex can
 * hold a run of 13 or more digits passing the Luhn check, which the platform refuses as a card number
 * wherever it reads one (an API key in an installation, a token in a hosted form's answer), so an id
 * of that kind would fail now and then.
 */
export function sandboxId(prefix: string, length: number): string {
  return `${prefix}${Array.from({ length }, () => LETTERS[randomInt(LETTERS.length)]).join('')}`;
}

/** A new sandbox merchant key, `sk_test_` and 24 random letters. */
export function newSandboxApiKey(): string {
  return sandboxId('sk_test_', 24);
}
