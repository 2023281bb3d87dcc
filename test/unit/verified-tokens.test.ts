import { afterEach, describe, expect, it, vi } from 'vitest';
import { issueAccessToken, tokenSigningKey, VerifiedTokens } from '../../api/auth/access-token.js';

const signingKey = tokenSigningKey(Buffer.alloc(32, 7).toString('base64'));
const otherKey = tokenSigningKey(Buffer.alloc(32, 8).toString('base64'));

describe('verified tokens', () => {
  afterEach(() => vi.useRealTimers());

  it('answers a token verified before only until it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tokens = new VerifiedTokens(signingKey);
    const { accessToken } = await issueAccessToken(signingKey, 'pk_1', 60);
    expect(await tokens.publicKeyOf(accessToken)).toBe('pk_1');
    expect(await tokens.publicKeyOf(accessToken)).toBe('pk_1');
    vi.setSystemTime(Date.now() + 61_000);
    expect(await tokens.publicKeyOf(accessToken)).toBeUndefined();
  });

  it('never holds a token it could not verify', async () => {
    const tokens = new VerifiedTokens(signingKey);
    const { accessToken: foreign } = await issueAccessToken(otherKey, 'pk_1', 60);
    expect(await tokens.publicKeyOf(foreign)).toBeUndefined();
    const { accessToken } = await issueAccessToken(signingKey, 'pk_2', 60);
    const [header, payload] = accessToken.split('.');
    expect(await tokens.publicKeyOf(`${header}.${payload}.${'A'.repeat(43)}`)).toBeUndefined();
    // The genuine token still verifies: a forged one with its claims took nothing from it.
    expect(await tokens.publicKeyOf(accessToken)).toBe('pk_2');
  });
});
