/**
 * Our ids' form as pattern text, lower case (the `i` flag reads upper case too): every id of this API,
 * tenants' included, is a UUID of this form.
 */
export const UUID_TEXT = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** A whole text that is a UUID, either case. */
export const UUID = new RegExp(`^${UUID_TEXT}$`, 'i');
