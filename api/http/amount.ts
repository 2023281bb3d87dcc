import { DomainValidationError } from '../../domain/errors.js';
import { parseAmount } from '../../domain/money.js';
import { ApiError } from './problem.js';

/** The amount in minor units, or a 400 naming `path` (too many decimals for the currency, too large…). */
export function amountOrBadRequest(amount: string, currency: string, path: string): bigint {
  try {
    return parseAmount(amount, currency);
  } catch (err) {
    if (!(err instanceof DomainValidationError)) throw err;
    throw new ApiError(400, 'validation_failed', '1 field failed validation', [
      { path, code: err.code, message: err.message },
    ]);
  }
}
