// Free text (names, notes, reasons, metadata) is stored, shown to every reader of the tenant, sent in
// webhooks and kept in workflow history: a secret key pasted there would leak with it. Only forms
// that are secret keys and nothing else are refused; a guess at other secrets would refuse tenants' words.

/**
 * A webhook signing secret (Standard Webhooks' `whsec_` and base64, ours among them) or a payment
 * provider's secret or restricted key (`sk_live_…`, `rk_test_…`, the sandbox's `sk_test_…`).
 */
const SECRET_KEY = /(?<![A-Za-z0-9_])(?:whsec_[A-Za-z0-9+/]{20,}|[rs]k_(?:live|test)_[A-Za-z0-9]{8,})/;

export const holdsSecretKey = (text: string): boolean => SECRET_KEY.test(text);

export const SECRET_KEY_NOT_ALLOWED = {
  code: 'secret_key_not_allowed',
  message:
    'holds a secret key (whsec_…, sk_live_…): free text is stored, shown and sent in webhooks, so it never takes one',
} as const;
