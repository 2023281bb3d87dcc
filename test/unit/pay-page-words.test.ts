import { describe, expect, it } from 'vitest';
import { failureWords } from '../../orders/pay-page/page-html.js';

describe('the payment page’s words for a failure', () => {
  it('says a code’s own words, else its kind’s (a return, a chargeback, one told under a replaced key), else the words given', () => {
    expect(failureWords('returned:insufficient_funds', 'x')).toBe(
      'Your bank returned the payment: insufficient funds.',
    );
    expect(failureWords('returned:account_closed', 'x')).toBe('Your bank returned the payment.');
    expect(failureWords('charged_back:product_not_received', 'x')).toBe('The payment was disputed and reversed.');
    expect(failureWords('returned_replaced_secret:insufficient_funds', 'x')).toBe(
      'The payment was reversed. Please contact us.',
    );
    expect(failureWords('charged_back_replaced_secret:fraudulent', 'x')).toBe(
      'The payment was reversed. Please contact us.',
    );
    expect(failureWords('do_not_honor', 'x')).toBe('Your bank declined the card.');
    expect(failureWords('something_new', 'The payment failed.')).toBe('The payment failed.');
    expect(failureWords(null, 'The payment failed.')).toBe('The payment failed.');
    // A provider's code that names a property of every object is no words of ours.
    expect(failureWords('constructor', 'The payment failed.')).toBe('The payment failed.');
    expect(failureWords('toString:x', 'The payment failed.')).toBe('The payment failed.');
  });
});
