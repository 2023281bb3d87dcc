import { EntitySchema } from '@mikro-orm/core';

/** When an instruction's payment links were last revoked: every link issued before then is refused. */
export class PaymentLinkRevocation {
  instructionId!: string;
  tenantId!: string;
  revokedAt!: Date;
}

export const PaymentLinkRevocationSchema = new EntitySchema<PaymentLinkRevocation>({
  class: PaymentLinkRevocation,
  tableName: 'payment_link_revocation',
  properties: {
    instructionId: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    revokedAt: { type: 'datetime' },
  },
});
