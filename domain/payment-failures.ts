/**
 * Failure types of the payment activities that no retry can cure. The activities throw them as
 * non-retryable ApplicationFailures; the workflow branches on them.
 */
export const APP_NOT_INSTALLED = 'AppNotInstalled';
export const PROVIDER_REJECTED = 'ProviderRejected';
export const APP_CREDENTIALS_UNREADABLE = 'AppCredentialsUnreadable';
