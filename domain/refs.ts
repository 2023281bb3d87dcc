/** orderRef, instructionRef and customerRef: 1–50 characters of letters, digits, '-', '_' and '.' (Imburse). */
export const REF_PATTERN = /^[A-Za-z0-9\-_.]{1,50}$/;

/**
 * A ref that is a dot segment ("." or ".."): allowed by REF_PATTERN, but an address cannot hold it
 * (clients resolve /orders/.. to /), so the order, instruction or customer it named could not be
 * read or changed.
 */
export function isDotSegment(ref: string): boolean {
  return ref === '.' || ref === '..';
}
