import { EntitySchema } from '@mikro-orm/core';

/** A nonce seen in an HMAC request, kept past the 5-minute window so a replay is refused by any API process. */
export class UsedNonce {
  publicKey!: string;
  nonce!: string;
  expiresAt!: Date;
}

export const UsedNonceSchema = new EntitySchema<UsedNonce>({
  class: UsedNonce,
  tableName: 'used_nonce',
  indexes: [{ properties: ['expiresAt'] }],
  properties: {
    publicKey: { type: 'string', length: 64, primary: true },
    nonce: { type: 'string', length: 128, primary: true },
    expiresAt: { type: 'datetime' },
  },
});
