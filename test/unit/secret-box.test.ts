import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf, SecretBox, SecretOpenError } from '../../db/secret-box.js';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

describe('SecretBox', () => {
  it('opens what it sealed, for the same row only', () => {
    const box = SecretBox.fromMasterKeys({ current: keyA });
    const sealed = box.seal('private key bytes', 'security_key:one');
    expect(sealed).not.toContain('private key bytes');
    expect(box.open(sealed, 'security_key:one')).toBe('private key bytes');
    // Copied onto another row or into another table, the ciphertext is refused.
    expect(() => box.open(sealed, 'security_key:two')).toThrow(SecretOpenError);
    expect(() => box.open(sealed, 'idempotency_record:one')).toThrow(SecretOpenError);
  });

  it('names the master key it sealed under, and refuses a box without that key', () => {
    const a = SecretBox.fromMasterKeys({ current: keyA });
    const b = SecretBox.fromMasterKeys({ current: keyB });
    const sealed = a.seal('x', 'ctx');
    expect(keyIdOf(sealed)).toBe(a.keyId);
    expect(a.keyId).not.toBe(b.keyId);
    expect(() => b.open(sealed, 'ctx')).toThrow(/sealed under master key/);
    // During a rotation the old key still opens, and new secrets go under the new one.
    const rotating = SecretBox.fromMasterKeys({ current: keyB, previous: [keyA] });
    expect(rotating.open(sealed, 'ctx')).toBe('x');
    expect(rotating.isCurrent(sealed)).toBe(false);
    expect(rotating.isCurrent(rotating.seal('y', 'ctx'))).toBe(true);
  });

  it('refuses a tampered, truncated or foreign value', () => {
    const box = SecretBox.fromMasterKeys({ current: keyA });
    const [format, keyId, iv, tag, ciphertext] = box.seal('secret', 'ctx').split('.');
    const flipped = Buffer.from(ciphertext, 'base64');
    flipped[0] ^= 1;
    expect(() => box.open([format, keyId, iv, tag, flipped.toString('base64')].join('.'), 'ctx')).toThrow(
      SecretOpenError,
    );
    // A tag cut short would weaken the check; only the full 16 bytes are taken.
    const shortTag = Buffer.from(tag, 'base64').subarray(0, 4).toString('base64');
    expect(() => box.open([format, keyId, iv, shortTag, ciphertext].join('.'), 'ctx')).toThrow(SecretOpenError);
    expect(() => box.open(`v1.${iv}.${tag}.${ciphertext}`, 'ctx')).toThrow(/unknown sealed secret format/);
  });

  it('refuses a master key that is not 32 bytes', () => {
    expect(() => SecretBox.fromMasterKeys({ current: randomBytes(16).toString('base64') })).toThrow(/32 bytes/);
  });
});
