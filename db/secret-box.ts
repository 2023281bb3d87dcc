import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const FORMAT = 'v2';
const TAG_BYTES = 16;
const IV_BYTES = 12;

/**
 * Where a sealed secret lives, e.g. `security_key:{publicKey}`. It is bound into the ciphertext as
 * AES-GCM additional data, so a ciphertext copied to another row (or column) does not decrypt.
 */
export type SecretContext = string;

/** The master keys a process holds: `current` seals and signs; `previous` only open (during a rotation). */
export interface MasterKeys {
  current: string;
  previous?: string[];
}

export class SecretOpenError extends Error {
  override name = 'SecretOpenError';
}

/**
 * Encrypts secrets at rest with AES-256-GCM under a key derived from a 32-byte master key.
 * Sealed form: `v2.{keyId}.{iv}.{tag}.{ciphertext}` (base64 parts). The key id names the master key
 * that sealed it, so a rotation can find what is left to re-encrypt and a process holding another
 * key fails closed with a clear error instead of garbage. See ARCHITECTURE.md, "Secrets at rest".
 */
export class SecretBox {
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(current: Buffer, previous: Buffer[] = []) {
    this.keyId = deriveKey(current).keyId;
    for (const master of [current, ...previous]) {
      const { keyId, key } = deriveKey(master);
      if (!this.keys.has(keyId)) this.keys.set(keyId, key);
    }
  }

  static fromMasterKeys({ current, previous = [] }: MasterKeys): SecretBox {
    return new SecretBox(
      Buffer.from(current, 'base64'),
      previous.map((key) => Buffer.from(key, 'base64')),
    );
  }

  seal(plaintext: string, context: SecretContext): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId) as Buffer, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(this.keyId, context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      FORMAT,
      this.keyId,
      iv.toString('base64'),
      cipher.getAuthTag().toString('base64'),
      ciphertext.toString('base64'),
    ].join('.');
  }

  open(sealed: string, context: SecretContext): string {
    const { keyId, iv, tag, ciphertext } = parseSealed(sealed);
    const key = this.keys.get(keyId);
    if (!key)
      throw new SecretOpenError(
        `sealed under master key ${keyId}, which this process does not hold (it has ${this.keyId})`,
      );
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretOpenError('malformed sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(additionalData(keyId, context));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretOpenError(
        `sealed secret does not open for ${context.split(':')[0]} (tampered, or copied from another row)`,
      );
    }
  }

  /** Whether `sealed` was sealed under this box's current key (a rotation re-seals the rest). */
  isCurrent(sealed: string): boolean {
    return parseSealed(sealed).keyId === this.keyId;
  }
}

export function keyIdOf(sealed: string): string {
  return parseSealed(sealed).keyId;
}

function parseSealed(sealed: string) {
  const parts = sealed.split('.');
  if (parts.length !== 5 || parts[0] !== FORMAT) throw new SecretOpenError(`unknown sealed secret format ${parts[0]}`);
  const [, keyId, iv, tag, ciphertext] = parts;
  return {
    keyId,
    iv: Buffer.from(iv, 'base64'),
    tag: Buffer.from(tag, 'base64'),
    ciphertext: Buffer.from(ciphertext, 'base64'),
  };
}

function additionalData(keyId: string, context: SecretContext): Buffer {
  return Buffer.from(`${FORMAT}|${keyId}|${context}`, 'utf8');
}

function deriveKey(master: Buffer): { keyId: string; key: Buffer } {
  if (master.length !== 32) throw new Error('a master key must be 32 bytes, base64-encoded (MASTER_KEY)');
  return {
    key: Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'secret-box', 32)),
    keyId: Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'secret-box-key-id', 6)).toString('hex'),
  };
}
