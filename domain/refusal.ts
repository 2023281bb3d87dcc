/** One field at fault in a request. `path` is the field as the caller wrote it, e.g. `instructions[0].amount`. */
export interface FieldError {
  path: string;
  code: string;
  message: string;
}

/**
 * What kind of "no" a refusal is: the thing is not there, it may not be done now, what was asked is
 * wrong, or something it needs is away for a moment (retry later).
 */
export type RefusalKind = 'not_found' | 'conflict' | 'invalid' | 'unavailable';

/**
 * An operation refused for a reason of the business, not a fault: what services throw. It says
 * nothing of HTTP; the API maps each kind to its status in one place (api/http/error-handler.ts),
 * and the payment page to its own words. `code` is machine-readable and stable.
 */
export class Refusal extends Error {
  constructor(
    readonly kind: RefusalKind,
    readonly code: string,
    message: string,
    /** For `invalid`: each field at fault. */
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = 'Refusal';
  }

  /** The request itself is wrong in these fields. */
  static invalid(errors: FieldError[]): Refusal {
    return new Refusal(
      'invalid',
      'validation_failed',
      `${errors.length} field${errors.length === 1 ? '' : 's'} failed validation`,
      errors,
    );
  }
}
