/**
 * A rule of the domain was broken by the caller's input. `code` is machine-readable and stable;
 * `path` names the field at fault so the API can point at it.
 */
export class DomainValidationError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly path: (string | number)[] = [],
  ) {
    super(message);
    this.name = 'DomainValidationError';
  }
}
