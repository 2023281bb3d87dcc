import { describe, expect, it } from 'vitest';
import { keyScopeDigest, keyScopeMoved } from '../../domain/key-scope.js';

// Where a payment's idempotency key is known: a connector's URL, a sandbox merchant's key. The API
// refuses to move it while a payment may be out; the worker compares it at every call under a key.

const connector = (url: string, timeoutMs = 1000) => ({
  configuration: { url, timeoutMs },
  secrets: { signingSecret: 'whsec_a' },
});
const sandbox = (apiKey: string) => ({ configuration: {}, secrets: { apiKey } });

describe('a key scope', () => {
  it('moves with a connector’s URL, not with a trailing slash or any other setting', () => {
    const before = { url: 'https://pay.example/v1', timeoutMs: 1000, signingSecret: 'whsec_a' };
    expect(keyScopeMoved(['url'], before, { ...before, url: 'https://pay.example/v1/' })).toEqual([]);
    expect(keyScopeMoved(['url'], before, { ...before, timeoutMs: 2000, signingSecret: 'whsec_b' })).toEqual([]);
    expect(keyScopeMoved(['url'], before, { ...before, url: 'https://other.example/v1' })).toEqual(['url']);
    expect(keyScopeMoved(['apiKey'], { apiKey: 'sk_test_a' }, { apiKey: 'sk_test_b' })).toEqual(['apiKey']);
  });

  it('has a digest per key that changes where the key scope moves, and only there', () => {
    const at = (installation: ReturnType<typeof connector>, key = 'k1') =>
      keyScopeDigest('HTTP_CONNECTOR', ['url'], installation, key);
    const first = at(connector('https://pay.example/v1'));
    expect(at(connector('https://pay.example/v1/', 5000))).toBe(first);
    expect(at(connector('https://other.example/v1'))).not.toBe(first);
    expect(at(connector('https://pay.example/v1'), 'k2'), 'salted with its key').not.toBe(first);
    // A secret's scope is read from the secrets, and the digest does not hold it.
    const card = keyScopeDigest('SANDBOX_CARD', ['apiKey'], sandbox('sk_test_aaaaaaaa'), 'k1');
    expect(keyScopeDigest('SANDBOX_CARD', ['apiKey'], sandbox('sk_test_bbbbbbbb'), 'k1')).not.toBe(card);
    expect(keyScopeDigest('SANDBOX_BANK', ['apiKey'], sandbox('sk_test_aaaaaaaa'), 'k1'), 'another app').not.toBe(card);
    expect(card).toMatch(/^[0-9a-f]{64}$/);
  });
});
