/** orderRef, instructionRef and customerRef: 1–50 characters of letters, digits, '-', '_' and '.' (Imburse). */
export const REF_PATTERN = /^[A-Za-z0-9\-_.]{1,50}$/;
