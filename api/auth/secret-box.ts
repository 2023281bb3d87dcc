import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

/**
 * Encrypts secrets at rest with AES-256-GCM under a 32-byte master key. The output names its
 * version so the format can change later; the GCM tag makes any tampering a decryption error.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('the master key must be 32 bytes (base64 in MASTER_KEY)');
    this.key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'secret-box', 32));
  }

  static fromBase64(masterKey: string): SecretBox {
    return new SecretBox(Buffer.from(masterKey, 'base64'));
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join('.');
  }

  decrypt(sealed: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== VERSION) throw new Error(`unknown secret format ${version}`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
  }
}

/** A second key from the same master key, for signing access tokens. */
export function tokenSigningKey(masterKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'access-token', 32));
}
